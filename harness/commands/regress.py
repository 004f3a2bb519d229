"""`regress` (the CI gate) and `rebaseline` (record its baseline deliberately); logic in harness.regression."""
from __future__ import annotations

import sys
from pathlib import Path

from harness import regression
from harness.registry import COMMANDS


def _add_common(parser) -> None:
    parser.add_argument("--baseline", type=Path, default=regression.BASELINE_FILE, help=f"default {regression.BASELINE_FILE}")
    parser.add_argument("--preset", default=regression.PRESET, help=f"default {regression.PRESET}")
    parser.add_argument("--seed", type=int, default=regression.SEED)
    parser.add_argument("--threads", type=int, default=regression.THREADS,
                        help=f"torch threads per run (default {regression.THREADS}; the baseline records it)")
    parser.add_argument("--strategies", nargs="+", default=None, help="default: ws, plus dinas when registered")
    parser.add_argument("--runs-dir", type=Path, default=None, help="keep the run directories here (default: a fresh temporary one)")
    parser.add_argument("--data-dir", default=None, help="data directory (default $HARNESS_DATA, else ./data)")


def _run(args) -> list[regression.Outcome]:
    strategies = args.strategies or regression.fixed_set()
    if args.runs_dir is not None:
        return regression.run_set(strategies, args.runs_dir, args.preset, args.seed, args.threads, args.data_dir)
    with regression.fresh_runs_dir() as tmp:
        return regression.run_set(strategies, Path(tmp), args.preset, args.seed, args.threads, args.data_dir)


@COMMANDS.register("regress")
class Regress:
    help = "CI gate: rerun the fixed regression set and fail if a Kendall tau fell below results/baselines/regress.json"

    @staticmethod
    def add_arguments(parser) -> None:
        _add_common(parser)

    @staticmethod
    def run(args) -> int:
        baseline = regression.load_baseline(args.baseline)
        if not baseline:
            print(f"regress: no baseline at {args.baseline}; record one with `{regression.REBASELINE}`", file=sys.stderr)
            return 1
        outcomes = _run(args)
        failures, notes = regression.compare(baseline, outcomes, args.preset, args.seed, args.threads)
        for line in notes:
            print(f"regress: {line}")
        for line in failures:
            print(f"REGRESSION {line}", file=sys.stderr)
        total = sum(o.wall_seconds or 0.0 for o in outcomes)
        print(f"regress: {len(outcomes)} run(s) in {total:.0f}s, {len(failures)} failure(s)")
        return 1 if failures else 0


@COMMANDS.register("rebaseline")
class Rebaseline:
    help = "rerun the regression set and overwrite results/baselines/regress.json (a reviewed act: commit the diff)"

    @staticmethod
    def add_arguments(parser) -> None:
        _add_common(parser)
        parser.add_argument("--tolerance", type=float, default=regression.DEFAULT_TOLERANCE,
                            help=f"allowed tau drop on this platform (default {regression.DEFAULT_TOLERANCE}: runs repeat exactly)")
        parser.add_argument("--cross-platform-tolerance", type=float, default=regression.DEFAULT_CROSS_PLATFORM_TOLERANCE,
                            help=f"allowed tau drop on another CPU/torch build (default {regression.DEFAULT_CROSS_PLATFORM_TOLERANCE})")

    @staticmethod
    def run(args) -> int:
        old = regression.load_baseline(args.baseline)
        outcomes = _run(args)
        entries = regression.record(outcomes, args.baseline, args.preset, args.seed, args.threads, args.tolerance,
                                    args.cross_platform_tolerance)
        for name, entry in entries.items():
            before = f"{old[name].tau:.4f}" if name in old else "none"
            print(f"rebaseline: {name} tau {before} -> {entry.tau:.4f} (tolerance {entry.tolerance:g} here, "
                  f"{entry.cross_platform_tolerance:g} elsewhere; commit {(entry.commit or '?')[:10]}; {entry.platform})")
        print(f"wrote {args.baseline}; review and commit it")
        return 0
