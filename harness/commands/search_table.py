"""`search-table`: differentiable-search runs (mean ± std over seeds) next to the published NB201 numbers."""
from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.registry import COMMANDS


@COMMANDS.register("search-table")
class SearchTable:
    help = "table of darts/darts2/gdas/idarts runs: derived architecture's ground truth vs. published numbers"

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("paths", nargs="*", type=Path, default=[Path("results/runs")],
                            help="run directories or folders of them (default results/runs)")
        parser.add_argument("--per-run", action="store_true", help="also list every run's derived architecture")

    @staticmethod
    def run(args) -> int:
        from harness.reports.search_table import collect, render, render_runs

        for path in args.paths:
            if not path.exists():
                raise HarnessError(f"{path} does not exist; give run directories or folders of them")
        runs = collect(args.paths)
        print(render(runs))
        if args.per_run:
            print()
            print(render_runs(runs))
        return 0
