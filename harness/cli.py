"""`python -m harness VERB ...`: verbs are discovered from harness.commands (see `--help`)."""
from __future__ import annotations

import argparse
import sys

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
    except KeyboardInterrupt:
        print("error: interrupted; finished results are kept, rerun with --resume to continue", file=sys.stderr)
        return 130
