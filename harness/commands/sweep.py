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
    seeds = []
    for item in split_list(text, "--seeds"):
        if not re.fullmatch(r"\d+", item):
            raise HarnessError(f"--seeds: {item!r} is not a seed; accepted: comma-separated integers >= 0, e.g. 0,1,2")
        seeds.append(int(item))
    return seeds


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
        parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
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
        print(summary_table([r.raw for r in results]))
        bad = [r for r in results if r.state != "complete"]
        done = len(results) - len(bad)
        print(f"{done}/{len(results)} runs complete" + (f"; {len(bad)} not: rerun the same command to resume them" if bad else ""))
        return 1 if bad else 0
