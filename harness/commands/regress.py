"""`regress` (the CI gate), `rebaseline` (record its baseline deliberately) and `regress-selftest` (prove its power).

Logic in harness.gate.regression and harness.gate.selftest.
"""
from __future__ import annotations

import sys
from pathlib import Path

from harness.gate import regression
from harness.errors import HarnessError
from harness.plugins import add_plugin_argument
from harness.registry import COMMANDS


def _add_common(parser) -> None:
    parser.add_argument("--baseline", type=Path, default=regression.BASELINE_FILE, help=f"default {regression.BASELINE_FILE}")
    parser.add_argument("--preset", default=regression.PRESET, help=f"default {regression.PRESET}")
    parser.add_argument("--seeds", type=int, default=regression.SEEDS,
                        help=f"K: seeds 0..K-1 of each strategy (default {regression.SEEDS})")
    parser.add_argument("--strategies", nargs="+", default=None, help="default: ws, plus dinas when registered")
    parser.add_argument("--runs-dir", type=Path, default=None, help="keep the run directories here (default: a fresh temporary one)")
    parser.add_argument("--data-dir", default=None, help="data directory (default $HARNESS_DATA, else ./data)")
    parser.add_argument("--address", default=None, help="Ray cluster address for the sweep (default: local)")
    add_plugin_argument(parser)


def _with_runs_dir(args, work):
    if args.runs_dir is not None:
        return work(Path(args.runs_dir))
    with regression.fresh_runs_dir() as tmp:
        return work(Path(tmp))


def _load(path: Path) -> regression.Baseline:
    baseline = regression.load_baseline(path)
    if baseline is None:
        raise HarnessError(f"no regression baseline at {path}; record one with `{regression.REBASELINE}`")
    return baseline


@COMMANDS.register("regress")
class Regress:
    help = ("CI gate: K seeds of each gated strategy; fail if a mean tau fell below the baseline mean by more than "
            "t_{0.95,df} * sd * sqrt(1/K + 1/K_base) (sd pooled over the strategies, df its degrees of freedom), "
            "or a run is not deterministic")

    @staticmethod
    def add_arguments(parser) -> None:
        _add_common(parser)
        parser.add_argument("--determinism-preset", default=regression.DETERMINISM_PRESET,
                            help=f"preset of the same-seed-twice check (default {regression.DETERMINISM_PRESET})")
        parser.add_argument("--no-determinism", action="store_true", help="skip the same-seed-twice check")

    @staticmethod
    def run(args) -> int:
        baseline = _load(args.baseline)
        if baseline.preset != args.preset:
            raise HarnessError(f"--preset {args.preset}: the baseline {args.baseline} was recorded on preset {baseline.preset}; "
                               f"accepted: --preset {baseline.preset}, or a baseline of preset {args.preset} "
                               f"(`python -m harness rebaseline --preset {args.preset} --baseline PATH`)")
        strategies = args.strategies or regression.fixed_set()
        seeds = regression.seed_list(args.seeds)

        def work(runs_dir: Path):
            outcomes = regression.run_set(strategies, seeds, runs_dir / "gate", args.preset, args.data_dir, address=args.address)
            failures, notes = regression.check(baseline, outcomes, args.preset)
            same = regression.identical_strategies(outcomes)
            failures += same
            notes.append(f"identical-predictions check ran: {len(strategies)} strategies compared pairwise, "
                         f"{'no two gave the same predictions' if not same else f'{len(same)} pair(s) identical'}")
            if not args.no_determinism:
                repeat = regression.determinism(strategies, runs_dir / "determinism", args.determinism_preset,
                                                data_dir=args.data_dir, address=args.address)
                failures += repeat
                notes.append(f"determinism check ran: each strategy twice on preset {args.determinism_preset}, "
                             f"{'byte-identical predictions' if not repeat else f'{len(repeat)} failure(s)'}")
            else:
                notes.append("determinism check skipped (--no-determinism)")
            return outcomes, failures, notes

        outcomes, failures, notes = _with_runs_dir(args, work)
        for line in notes:
            print(f"regress: {line}")
        for line in failures:
            print(f"REGRESSION {line}", file=sys.stderr)
        total = sum(o.wall_seconds or 0.0 for o in outcomes)
        print(f"regress: {len(outcomes)} run(s), {total:.0f} s of run time, {len(failures)} failure(s)")
        return 1 if failures else 0


@COMMANDS.register("rebaseline")
class Rebaseline:
    help = "rerun K seeds of the regression set and overwrite results/baselines/regress.json (a reviewed act: commit the diff)"

    @staticmethod
    def add_arguments(parser) -> None:
        _add_common(parser)
        parser.add_argument("--false-alarm", type=float, default=regression.FALSE_ALARM,
                            help=f"one-sided false-alarm rate per strategy (default {regression.FALSE_ALARM})")

    @staticmethod
    def run(args) -> int:
        try:
            old = regression.load_baseline(args.baseline)
        except HarnessError:
            old = None  # an old-format or corrupt baseline is what re-baselining replaces
        strategies = args.strategies or regression.fixed_set()
        seeds = regression.seed_list(args.seeds)
        outcomes = _with_runs_dir(args, lambda d: regression.run_set(strategies, seeds, d, args.preset, args.data_dir,
                                                                     address=args.address))
        new = regression.record(outcomes, args.baseline, args.preset, args.false_alarm)
        drops = regression.smallest_caught_drops(new, len(seeds))
        for name, entry in new.strategies.items():
            before = f"{old.strategies[name].mean:.4f}" if old and name in old.strategies else "none"
            taus = ", ".join(f"{t:.4f}" for t in entry.taus)
            print(f"rebaseline: {name} mean tau {before} -> {entry.mean:.4f} (sd {entry.sd:.4f}; seeds {taus}); "
                  f"with {len(seeds)} seeds the gate fails on a mean drop > {drops[name]:.4f}")
        print(f"rebaseline: {regression.false_alarm_rates(new, len(new.strategies))}")
        print(f"wrote {args.baseline}; review and commit it")
        return 0


@COMMANDS.register("regress-selftest")
class RegressSelftest:
    help = ("plant known regressions (test-only faults, no source edits) and show the gate fails each and passes clean code "
            "on its own seeds and on fresh ones; graded learning-rate faults give its detection curve")

    @staticmethod
    def add_arguments(parser) -> None:
        _add_common(parser)
        from harness.gate.selftest import FAULTS
        parser.add_argument("--faults", nargs="+", default=None, help=f"subset of: {', '.join(FAULTS)} (default all)")
        parser.add_argument("--jobs", type=int, default=2, help="runs in parallel, one process and one thread each (default 2)")
        from harness.gate.selftest import FRESH_SEED_START
        parser.add_argument("--fresh-seed-start", type=int, default=FRESH_SEED_START,
                            help=f"clean code also runs on K seeds from here, new to the baseline (default {FRESH_SEED_START})")
        parser.add_argument("--csv", type=Path, default=None,
                            help="also write one row per check and strategy here (mean tau, drop, allowed drop, gate), "
                                 "e.g. results/summaries/regress_selftest.csv for the gate's docs")

    @staticmethod
    def run(args) -> int:
        from harness.gate.selftest import selftest
        if args.jobs < 1:
            raise HarnessError(f"--jobs {args.jobs} must be >= 1")
        baseline = _load(args.baseline)
        strategies = args.strategies or regression.fixed_set()
        seeds = regression.seed_list(args.seeds)
        caught, planted, clean_ok = _with_runs_dir(
            args, lambda d: selftest(baseline, strategies, seeds, args.preset, d, args.data_dir, args.jobs, args.faults,
                                     fresh_start=args.fresh_seed_start, csv_path=args.csv))
        print(f"selftest: caught {caught}/{planted} planted regressions; clean code {'passed' if clean_ok else 'FAILED'}")
        return 0 if clean_ok and caught == planted and planted > 0 else 1
