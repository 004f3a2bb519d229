"""`python -m harness VERB ...`: verbs are discovered from harness.commands (see `--help`)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.errors import HarnessError
from harness.registry import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness",
        description="Benchmark how well weight-sharing NAS strategies rank architectures against NAS-Bench-201.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for name in COMMANDS.names():
        command = COMMANDS.get(name)
        verb = sub.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(verb)
        verb.set_defaults(_command=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "plugins", None):
            from harness.plugins import load_plugins

            load_plugins(args.plugins)  # before the verb: names it validates may come from them
        return int(args._command.run(args) or 0)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        how = "rerun with --resume to continue" if hasattr(args, "resume") else "rerun the same command to continue (finished runs are skipped)"
        signame = exc.args[0] if exc.args and str(exc.args[0]).startswith("SIG") else "SIGINT"
        print(f"error: interrupted by {signame}; finished results are kept, {how}", file=sys.stderr)
        return getattr(exc, "exit_code", 130)
    except BrokenPipeError:  # output piped into e.g. `head`, which has read enough
        sys.stdout = open(os.devnull, "w")
        return 1
    except OSError as exc:
        # The environment, not the input (a full or read-only disk while writing tables, reports...): one line.
        from harness.runs.fileio import write_failure

        print(f"error: {write_failure(exc, Path(exc.filename or '.'))}", file=sys.stderr)
        return 2
