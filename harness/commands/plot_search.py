"""`plot-search`: derived-architecture ground truth and skip/none fraction over a differentiable search."""
from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.registry import COMMANDS

FIGURES_DIR = Path("results/figures")


@COMMANDS.register("plot-search")
class PlotSearch:
    help = "plot the search history of darts/darts2/gdas/idarts runs (one run: into its directory; several: overlaid)"

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("runs", nargs="+", type=Path, help="finished run directories of differentiable strategies")
        parser.add_argument("--out", type=Path, default=None,
                            help=f"output path without suffix (default: RUN/search for one run, {FIGURES_DIR}/search-A-B-... for several)")

    @staticmethod
    def run(args) -> int:
        from harness.scoring.groundtruth import COLUMNS, load_ground_truth
        from harness.plots.search import plot_search

        for run in args.runs:
            if not run.is_dir():
                raise HarnessError(f"run directory {run} does not exist")
        if args.out is not None:
            out = args.out
        elif len(args.runs) == 1:
            out = args.runs[0] / "search"
        else:
            out = FIGURES_DIR / ("search-" + "-".join(r.name for r in args.runs))
        try:
            gt = load_ground_truth()
            optimum = {column: gt.best(column) for column in COLUMNS}
        except HarnessError:
            optimum = None  # the reference line is a courtesy; the curves come from the runs themselves
        for path in plot_search(args.runs, out, optimum):
            print(f"wrote {path}")
        return 0
