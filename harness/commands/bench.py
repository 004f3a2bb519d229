"""`bench`: train a strategy's supernet(s), score architectures, write a run directory."""
from __future__ import annotations

from pathlib import Path

from harness import api
from harness.plugins import add_plugin_argument
from harness.registry import COMMANDS
from harness.runs.run import RUNS_DIR


def add_run_arguments(parser) -> None:
    parser.add_argument("--space", default="nb201", help="search space (see `python -m harness list`)")
    parser.add_argument("--preset", default="mini", help="smoke | mini | paper | ... (see `list`)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a preset value, e.g. --set train.epochs=10 (repeatable)")
    parser.add_argument("--runs-dir", type=Path, default=RUNS_DIR, help=f"where run directories go (default {RUNS_DIR})")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--data-dir", default=None, help="data directory (default $HARNESS_DATA, else ./data)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_plugin_argument(parser)


@COMMANDS.register("bench")
class Bench:
    help = "train and score one strategy on one space (resumable run directory under results/runs/)"

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("--strategy", required=True, help="strategy name (see `python -m harness list`)")
        add_run_arguments(parser)
        parser.add_argument("--name", default=None, help="run directory name (default derived from the arguments)")
        parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint")
        parser.add_argument("--measure-disturbance", action="store_true",
                            help="run the disturbance probe (same as --set features.disturbance.enabled=true)")

    @staticmethod
    def run(args) -> int:
        disturbance = ("features.disturbance.enabled=true",) if args.measure_disturbance else ()
        result = api.bench(
            strategy=args.strategy, space=args.space, preset=args.preset, seed=args.seed,
            overrides=tuple(args.overrides) + disturbance, plugins=args.plugins, runs_dir=args.runs_dir, name=args.name,
            resume=args.resume, device=args.device, data_dir=args.data_dir, progress=not args.no_progress,
        )
        print(result.summary())
        print(f"  run directory   {Path(result.run_dir).absolute()}")
        if result.record.get("ground_truth_warning"):
            print(f"  WARNING: {result.record['ground_truth_warning']}")
        return 0
