"""`compare`: run strategies (or named variants) on the same seeds and report the verdict with its uncertainty."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from harness.errors import HarnessError
from harness.plugins import add_plugin_argument
from harness.registry import COMMANDS
from harness.runs.run import RUNS_DIR

TABLES_DIR = Path("results/tables")
SUMMARIES_DIR = Path("results/summaries")
VARIANT_HELP = (
    "a named variant LABEL=STRATEGY[:SECTION.KEY=VALUE[:...]] (overrides separated by ':'), e.g. "
    "'ws-lr3=ws:train.lr=0.015' or 'dinas-grad=dinas:strategy.dinas.variant=grad'; repeatable, combines with --strategies"
)


@COMMANDS.register("compare")
class Compare:
    help = "run what is missing and compare strategies on the same seeds: paired t-test verdicts, intervals, power"

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
        parser.add_argument("--estimator", default=None, metavar="NAME",
                            help="compare by this estimator (e.g. final-accuracy, ema-loss-flip) of runs made with "
                                 "eval.all_estimators=true, which this adds to every variant: estimators paired on one training")
        parser.add_argument("--truth", choices=("benchmark", "proxy"), default="benchmark",
                            help="rank against the benchmark's ground truth (default), or against the preset's proxy truth "
                                 "(results/truth/<space>-<preset>.csv: the weight-sharing error alone)")
        parser.add_argument("--arch-bootstrap", type=int, default=1000, help="architecture bootstrap resamples per seed (default 1000)")
        parser.add_argument("--summary", default=None, metavar="STEM",
                            help=f"when every run is complete, also copy paired.csv to {SUMMARIES_DIR}/STEM.csv, where "
                                 "`make docs` renders it (<!-- generated:summary/STEM --> and verdict/STEM blocks)")
        add_plugin_argument(parser)

    @staticmethod
    def run(args) -> int:
        from harness import api

        if args.summary is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", args.summary):
            raise HarnessError(f"--summary {args.summary!r}; accepted: a file stem of letters, digits, '_', '.', '-'")
        result = api.compare(
            strategies=args.strategies, variants=args.variants, seeds=args.seeds, preset=args.preset, space=args.space,
            reference=args.reference, overrides=args.overrides, plugins=args.plugins, runs_dir=args.runs_dir,
            out=args.out, data_dir=args.data_dir, address=args.address,
            arch_bootstrap=args.arch_bootstrap, estimator=args.estimator, truth=args.truth,
        )
        print(result.text)
        for path in result.paths.values():
            print(f"wrote {path}")
        if args.summary is not None:
            if not result.complete:
                print(f"--summary {args.summary}: not written, some runs are not complete (a quoted verdict needs every planned seed)")
            else:
                SUMMARIES_DIR.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(result.paths["paired_csv"], SUMMARIES_DIR / f"{args.summary}.csv")
                print(f"wrote {SUMMARIES_DIR / (args.summary + '.csv')} (rendered by `make docs`)")
        return 0 if result.complete else 1
