"""`plot`: figures from finished run directories (`plot disturbance RUN_A RUN_B ...`)."""
from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.registry import COMMANDS

FIGURES_DIR = Path("results/figures")
KINDS = ("disturbance",)


@COMMANDS.register("plot")
class Plot:
    help = "draw a figure from run directories, e.g. `plot disturbance RUN_A RUN_B` (ws vs dinas side by side)"

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("kind", choices=KINDS, help="which figure")
        parser.add_argument("runs", nargs="+", type=Path, help="run directories (with a disturbance measurement)")
        parser.add_argument("--out", type=Path, default=None,
                            help=f"output path without suffix; PNG and PDF are written (default {FIGURES_DIR}/disturbance-A-vs-B)")

    @staticmethod
    def run(args) -> int:
        from harness.plots.disturbance import plot_comparison

        for run in args.runs:
            if not run.is_dir():
                raise HarnessError(f"run directory {run} does not exist")
        out = args.out or FIGURES_DIR / ("disturbance-" + "-vs-".join(r.name for r in args.runs))
        for path in plot_comparison(args.runs, out):
            print(f"wrote {path}")
        return 0
