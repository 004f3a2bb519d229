"""`sweep`: a grid of runs (strategies x seeds x presets x override sets) on Ray, resumable."""
from __future__ import annotations

import itertools
import re
from pathlib import Path

from harness.errors import HarnessError
from harness.plugins import add_plugin_argument
from harness.registry import COMMANDS
from harness.runs.run import RUNS_DIR


def split_list(text: str, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise HarnessError(f"{what} {text!r} is empty; accepted: a comma-separated list")
    return items


def parse_seeds(text: str) -> list[int]:
    from harness.runs.sweep import parse_seeds as parse

    return parse(text)


def parse_override_set(text: str) -> tuple[str, tuple[str, ...]]:
    """NAME:KEY=V,KEY=V -> (NAME, (KEY=V, ...)). A comma starts a new setting only before `KEY=`."""
    name, sep, body = text.partition(":")
    if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or not body.strip():
        raise HarnessError(f"--override-set {text!r} is not of the form NAME:SECTION.KEY=VALUE[,SECTION.KEY=VALUE...] (NAME: letters, digits, _ . -)")
    return name, tuple(p.strip() for p in re.split(r",(?=\s*[\w.]+\s*=)", body) if p.strip())


def build_cells(strategies, seeds, presets, spaces, common, override_sets):
    from harness.runs.sweep import Cell

    sets = override_sets or [("", ())]
    names = [n for n, _ in sets]
    if len(set(names)) != len(names):
        raise HarnessError(f"--override-set names repeat: {names}; accepted: distinct names")
    return [
        Cell(strategy=st, space=sp, preset=pr, seed=se, overrides=tuple(common) + extra, label=label)
        for (label, extra), pr, sp, st, se in itertools.product(sets, presets, spaces, strategies, seeds)
    ]


@COMMANDS.register("sweep")
class Sweep:
    help = "run a grid of strategies x seeds x presets x override sets on Ray (local by default); skips complete runs"

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("--strategies", required=True, help="comma-separated strategy names, e.g. ws,params")
        parser.add_argument("--seeds", default="0", help="seeds: N, N-M, or a comma list such as 0-2,7 (default 0)")
        parser.add_argument("--presets", "--preset", dest="presets", default="mini", help="comma-separated presets (default mini)")
        parser.add_argument("--spaces", "--space", dest="spaces", default="nb201", help="comma-separated spaces (default nb201)")
        parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                            help="override applied to every run (repeatable)")
        parser.add_argument("--override-set", dest="override_sets", action="append", default=[], metavar="NAME:KEY=V,...",
                            help="a named set of overrides; every set is one more column of the grid (repeatable)")
        parser.add_argument("--runs-dir", type=Path, default=RUNS_DIR, help=f"where run directories go (default {RUNS_DIR})")
        parser.add_argument("--address", default=None, help="Ray cluster address (default $RAY_ADDRESS, else a local Ray)")
        parser.add_argument("--cpus-per-run", type=float, default=1.0, help="CPUs per run; also its compute.threads (default 1)")
        parser.add_argument("--gpus-per-run", type=float, default=0.0, help="GPUs per run; fractions share a GPU (default 0)")
        parser.add_argument("--data-dir", default=None, help="data directory (default $HARNESS_DATA, else ./data)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        add_plugin_argument(parser)

    @staticmethod
    def run(args) -> int:
        from harness import api
        from harness.runs.sweep import summary_table

        sets = [parse_override_set(t) for t in args.override_sets]
        names = [n for n, _ in sets]
        if len(set(names)) != len(names):
            raise HarnessError(f"--override-set names repeat: {names}; accepted: distinct names")
        results = api.sweep(
            strategies=split_list(args.strategies, "--strategies"), seeds=parse_seeds(args.seeds),
            presets=split_list(args.presets, "--presets"), spaces=split_list(args.spaces, "--spaces"),
            overrides=args.overrides, override_sets=dict(sets), plugins=args.plugins, runs_dir=args.runs_dir,
            address=args.address, cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run,
            data_dir=args.data_dir, progress=not args.no_progress,
        )
        raw = [r.raw for r in results]
        print(summary_table(raw))
        print(f"run directories under {Path(args.runs_dir).absolute()}")
        print(sweep_footer(raw))
        return 0 if all(r.state == "complete" for r in results) else 1


def sweep_footer(results) -> str:
    """How many runs completed, and for the others the next step that can help (a rerun only resumes interrupted
    runs; invalid or refused cells need another command, failed runs the cause in their error column)."""
    done = sum(r.state == "complete" for r in results)
    parts = [f"{done}/{len(results)} runs complete"]
    counts = {state: sum(r.state == state for r in results) for state in ("interrupted", "failed", "invalid", "refused")}
    if counts["interrupted"]:
        parts.append(f"{counts['interrupted']} interrupted: rerun the same command to resume them")
    if counts["failed"]:
        parts.append(f"{counts['failed']} failed: see the error column; fix the cause, then rerun to resume them")
    if counts["invalid"]:
        parts.append(f"{counts['invalid']} invalid: fix the arguments named in the error column (a rerun repeats the refusal)")
    if counts["refused"]:
        parts.append(f"{counts['refused']} refused: the run directory holds another config; move it away or label the cells")
    return "; ".join(parts)
