"""`compare`: run strategies (or named variants) on the same seeds and report the verdict with its uncertainty."""
from __future__ import annotations

import re
from pathlib import Path

from harness.errors import HarnessError
from harness.registry import COMMANDS
from harness.reports.compare import cell_labels, make_cells, parse_seeds, read_results, variants_from, write_report
from harness.runs.run import RUNS_DIR
from harness.runs.sweep import run_cells

TABLES_DIR = Path("results/tables")
VARIANT_HELP = (
    "a named variant LABEL=STRATEGY[:SECTION.KEY=VALUE[:...]] (overrides separated by ':'), e.g. "
    "'ws-lr3=ws:train.lr=0.015' or 'dinas-grad=dinas:strategy.dinas.variant=grad'; repeatable, combines with --strategies"
)


@COMMANDS.register("compare")
class Compare:
    help = "run what is missing and compare strategies on the same seeds: intervals, paired differences, power"

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("--strategies", default="", help="comma-separated strategies, each its own variant (e.g. ws,dinas)")
        parser.add_argument("--variants", nargs="+", action="extend", default=[], metavar="LABEL=STRATEGY[:K=V...]", help=VARIANT_HELP)
        parser.add_argument("--seeds", default="0-4", help="seeds: N, N-M, or a comma list (default 0-4)")
        parser.add_argument("--preset", default="mini")
        parser.add_argument("--space", default="nb201")
        parser.add_argument("--reference", default=None, help="label the others are paired against (default: the first)")
        parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                            help="override applied to every variant (repeatable)")
        parser.add_argument("--runs-dir", type=Path, default=RUNS_DIR, help=f"default {RUNS_DIR}")
        parser.add_argument("--out", type=Path, default=None, help=f"default {TABLES_DIR}/compare-<labels>-<preset>-s<seeds>")
        parser.add_argument("--data-dir", default=None, help="data directory (default $HARNESS_DATA, else ./data)")
        parser.add_argument("--address", default=None, help="Ray cluster address for the sweep (default: local)")
        parser.add_argument("--bootstrap", type=int, default=10000, help="seed-pair bootstrap resamples (default 10000)")
        parser.add_argument("--estimator", default=None, metavar="NAME",
                            help="compare by this estimator (e.g. final-accuracy, ema-loss-flip) of runs made with "
                                 "eval.all_estimators=true, which this adds to every variant: estimators paired on one training")
        parser.add_argument("--truth", choices=("benchmark", "proxy"), default="benchmark",
                            help="rank against the benchmark's ground truth (default), or against the preset's proxy truth "
                                 "(results/truth/<space>-<preset>.csv: the weight-sharing error alone)")
        parser.add_argument("--arch-bootstrap", type=int, default=1000, help="architecture bootstrap resamples per seed (default 1000)")

    @staticmethod
    def run(args) -> int:
        strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
        variants = variants_from(strategies, args.variants)
        seeds = parse_seeds(args.seeds)
        reference = args.reference or variants[0].label
        if reference not in {v.label for v in variants}:
            raise HarnessError(f"--reference {reference!r} is not among the variants {[v.label for v in variants]}")
        for name, value in (("--bootstrap", args.bootstrap), ("--arch-bootstrap", args.arch_bootstrap)):
            if value < 1:
                raise HarnessError(f"{name}={value} must be >= 1")
        from harness.config import build_options, resolve
        from harness.registry import STRATEGIES
        for v in variants:  # every name and override is checked before any run starts
            cfg = resolve(args.preset, tuple(args.overrides) + v.overrides, space=args.space)
            build_options(STRATEGIES.get(v.strategy).Options, cfg.strategy.get(v.strategy, {}), v.strategy)
        if args.estimator is not None:
            from harness.config import WEIGHTS, estimator_name
            from harness.training.evaluation import ESTIMATE_BY
            names = [estimator_name(w, b, f) for w in WEIGHTS for b in ESTIMATE_BY for f in (False, True)]
            if args.estimator not in names:
                raise HarnessError(f"--estimator {args.estimator!r} is not one of: {', '.join(names)}")
            if "eval.all_estimators=true" not in args.overrides:
                args.overrides = [*args.overrides, "eval.all_estimators=true"]
        labels = "_".join(v.label for v in variants)
        out = args.out or TABLES_DIR / re.sub(r"[^A-Za-z0-9_.+-]", "-", f"compare-{labels}-{args.preset}-s{args.seeds}")
        cells = make_cells(variants, seeds, args.preset, args.space, args.overrides)
        results = run_cells(cells, args.runs_dir, address=args.address, data_dir=args.data_dir)
        rows = read_results(results, cell_labels(variants, seeds), args.estimator, args.truth)
        title = f"{', '.join(v.label for v in variants)} on {args.preset}, seeds {','.join(map(str, seeds))}"
        if args.estimator:
            title += f", estimator {args.estimator}"
        title += f", against the {'benchmark' if args.truth == 'benchmark' else 'proxy'} truth"
        if args.overrides:
            title += f" (all with {' '.join(args.overrides)})"
        text, paths = write_report(rows, variants, reference, out, title, args.bootstrap, args.arch_bootstrap)
        print(text)
        for path in paths.values():
            print(f"wrote {path}")
        return 0 if (rows["state"] == "complete").all() else 1
