"""`paper NAME`: run what a benchmarks/papers/NAME.toml table needs (resuming partial runs), then render it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness.commands.tables import TABLES_DIR
from harness.errors import HarnessError
from harness.plugins import add_plugin_argument
from harness.registry import COMMANDS
from harness.reports import figures
from harness.reports.collect import read_run
from harness.reports.paper import load_spec, plan, spec_names, spec_run_dirs, write_paper
from harness.runs.run import RUNS_DIR

FIGURES = {
    "scatter": figures.scatter_figure,
    "tau_over_training": figures.tau_over_training_figure,
    "disturbance": figures.disturbance_figure,
}


# More runs than this are started only with --yes, after the plan and its cost were shown.
FEW_RUNS = 4
# CPU minutes of one run where no finished run of its preset is at hand to time it: measured on a shared
# 2-core machine (docs/timings.md). Presets without a figure are reported as unknown.
MEASURED_CPU_MINUTES = {"mini": 6.1}


def cpu_seconds_per_run(strategy: str, preset: str, runs_dir: Path) -> tuple[float | None, str]:
    """(seconds, source): the median CPU time (wall x threads) of the finished runs of this strategy and preset
    under `runs_dir`, else of any strategy on the preset, else the measured figure above."""
    times: dict[bool, list[float]] = {True: [], False: []}
    for metrics_path in Path(runs_dir).glob("*/metrics.json"):
        try:
            m = json.loads(metrics_path.read_text())
            if m.get("preset") == preset and m.get("wall_seconds") is not None:
                times[m.get("strategy") == strategy].append(float(m["wall_seconds"]) * max(1, int(m.get("threads") or 1)))
        except (OSError, ValueError, TypeError):
            continue
    if times[True]:
        return float(np.median(times[True])), f"median of {len(times[True])} finished run(s) of it here"
    if times[False]:
        return float(np.median(times[False])), f"median of {len(times[False])} finished {preset} run(s) of other strategies here"
    if preset in MEASURED_CPU_MINUTES:
        return MEASURED_CPU_MINUTES[preset] * 60, f"one ws {preset} run on a shared 2-core machine, docs/timings.md; strategies differ"
    return None, "no finished run of this preset to time"


def run_plan(todo, runs_dir: Path, cpus_per_run: float) -> str:
    """The runs about to start, by preset and strategy, with their estimated CPU time."""
    groups: dict[tuple[str, str], int] = {}
    for run, _seed, _path, _state in todo:
        groups[run.preset, run.strategy] = groups.get((run.preset, run.strategy), 0) + 1
    lines, total, unknown = [f"plan: {len(todo)} missing or partial runs"], 0.0, False
    for (preset, strategy), count in sorted(groups.items()):
        seconds, source = cpu_seconds_per_run(strategy, preset, runs_dir)
        if seconds is None:
            unknown = True
            lines.append(f"  {count} x {strategy} ({preset}): CPU time unknown ({source})")
        else:
            total += count * seconds
            lines.append(f"  {count} x {strategy} ({preset}): ~{seconds / 60:.1f} CPU-min each ({source})")
    lines.append(f"  estimated CPU time {'at least ' if unknown else ''}~{total / 3600:.1f} CPU-hours; wall time about that divided by "
                 f"the cores in use ({cpus_per_run:g} per run)")
    return "\n".join(lines)


@COMMANDS.register("paper")
class Paper:
    help = "regenerate a paper table/figure from benchmarks/papers/NAME.toml: run what is missing, render ours beside published"

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("name", nargs="?", help=f"one of: claims, {', '.join(spec_names()) or '-'} (or a path to a .toml)")
        parser.add_argument("--runs-dir", type=Path, default=RUNS_DIR, help=f"default {RUNS_DIR}")
        parser.add_argument("--out", type=Path, default=TABLES_DIR, help=f"default {TABLES_DIR}")
        parser.add_argument("--no-run", action="store_true", help="render from the runs that exist; start none")
        parser.add_argument("--list", action="store_true", help="list the paper specs and what each still needs")
        parser.add_argument("--data-dir", default=None, help="data directory (default $HARNESS_DATA, else ./data)")
        parser.add_argument("--progress", action="store_true", help="a progress bar over the runs")
        parser.add_argument("--address", default=None, help="Ray cluster address (default $RAY_ADDRESS, else a local Ray)")
        parser.add_argument("--cpus-per-run", type=float, default=1.0, help="CPUs (and compute.threads) per run (default 1)")
        parser.add_argument("--gpus-per-run", type=float, default=0.0, help="GPUs per run; fractions share a GPU (default 0)")
        add_plugin_argument(parser)
        parser.add_argument("--yes", action="store_true", help=f"start the missing runs even when there are more than {FEW_RUNS}")
        parser.add_argument("--run", action="store_true", help="claims: run the missing CPU runs (default: render what exists)")
        parser.add_argument("--preset", default="mini", help="claims: the CPU preset of the tests (default mini)")
        parser.add_argument("--seeds", default=None, help="claims: seeds of every CPU test (default: each test's seeds, "
                            "planned before its runs: 0-8 for dinas - ws and the other papers, 0-15 for dinas against "
                            "its two controls; docs/dinas.md)")

    @staticmethod
    def run(args) -> int:
        if args.name == "claims":
            return _claims(args)
        if args.list or not args.name:
            for name in spec_names():
                states = pd.Series([state for *_rest, state in plan(load_spec(name), args.runs_dir)])
                print(f"{name:<22} " + ", ".join(f"{n} {s}" for s, n in states.value_counts().items()))
            return 0
        spec = load_spec(args.name)
        planned = plan(spec, args.runs_dir)
        if not args.no_run:
            todo = [p for p in planned if p[3] in ("missing", "partial")]
            if todo:
                print(run_plan(todo, args.runs_dir, args.cpus_per_run), flush=True)
                if len(todo) > FEW_RUNS and not args.yes:
                    raise HarnessError(f"{len(todo)} runs to start (more than {FEW_RUNS}): pass --yes to start them "
                                       f"(make paper TABLE={spec.name} ARGS=--yes), or --no-run to render what exists")
                from harness.runs.sweep import Cell, run_cells, summary_table

                # Through the sweep: every missing run validated first, then run in parallel on Ray, resumed if partial.
                cells = [Cell(run.strategy, run.space, run.preset, seed, tuple(run.overrides)) for run, seed, _p, _s in todo]
                print(f"running {len(cells)} missing or partial runs through the sweep", flush=True)
                results = run_cells(cells, args.runs_dir, address=args.address, cpus_per_run=args.cpus_per_run,
                                    gpus_per_run=args.gpus_per_run, progress=args.progress, data_dir=args.data_dir)
                print(summary_table(results), flush=True)
            for run in {r.strategy: r for r, _seed, _path, state in planned if state == "unregistered"}.values():
                print(f"skipping {run.strategy}: not registered in this checkout (shown as not run)")
            for _run, _seed, path, state in planned:
                if state == "stale":
                    print(f"skipping {path}: made with another config than the preset gives now; move it away to rerun")
        paths = write_paper(spec, args.runs_dir, args.out)
        written = list(paths.values())
        runs = pd.DataFrame([read_run(p) for p in spec_run_dirs(spec, args.runs_dir)])
        for name in spec.figures:
            if name not in FIGURES:
                raise HarnessError(f"{spec.name}: unknown figure {name!r}; accepted: {', '.join(sorted(FIGURES))}")
            if len(runs):
                written += FIGURES[name](runs, args.out / f"paper_{spec.name}_{name}")
        print(paths["markdown"].read_text())
        for path in written:
            print(f"wrote {path}")
        return 0


def _claims(args) -> int:
    from harness.reports.claims import claim_tests, claims_table, missing_cells, write_claims
    from harness.reports.compare import parse_seeds

    tests = claim_tests(args.preset, None if args.seeds is None else parse_seeds(args.seeds))
    if args.run:
        cells = missing_cells(tests, args.runs_dir)
        if cells:
            from harness.runs.sweep import run_cells, summary_table

            print(f"running {len(cells)} missing or partial runs through the sweep", flush=True)
            results = run_cells(cells, args.runs_dir, address=args.address, cpus_per_run=args.cpus_per_run,
                                gpus_per_run=args.gpus_per_run, progress=args.progress, data_dir=args.data_dir)
            print(summary_table(results), flush=True)
    paths = write_claims(claims_table(tests, args.runs_dir), args.runs_dir, args.out)
    print(paths["markdown"].read_text())
    for path in paths.values():
        print(f"wrote {path}")
    return 0
