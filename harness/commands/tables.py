"""`tables`: every run directory under results/runs (or --runs-dir) -> Markdown / CSV / LaTeX tables + figures."""
from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.registry import COMMANDS, STRATEGIES
from harness.reports.collect import collect, unique_runs
from harness.reports.figures import write_figures
from harness.reports.tables import write_tables
from harness.runs.run import RUNS_DIR

TABLES_DIR = Path("results/tables")


@COMMANDS.register("tables")
class Tables:
    help = "collect finished runs into tables (Markdown, CSV, LaTeX) and figures under results/tables/"

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("--runs-dir", type=Path, action="append", default=None,
                            help=f"a directory of run directories (repeatable; default {RUNS_DIR})")
        parser.add_argument("--out", type=Path, default=TABLES_DIR, help=f"output directory (default {TABLES_DIR})")
        parser.add_argument("--no-figures", action="store_true", help="tables only")

    @staticmethod
    def run(args) -> int:
        roots = args.runs_dir or [RUNS_DIR]
        for root in roots:
            if not Path(root).is_dir():
                what = "is not a directory" if Path(root).exists() else "does not exist"
                raise HarnessError(f"--runs-dir {root} {what}; accepted: a directory of run directories (default {RUNS_DIR})")
        runs = collect(roots)
        paths = write_tables(runs, args.out, registered=STRATEGIES.names())
        # Figures draw one run per configuration: a duplicate is never picked over the run it repeats.
        figures = [] if args.no_figures else write_figures(unique_runs(runs), args.out / "figures")
        complete = int((runs["state"] == "complete").sum())
        print(f"{len(runs)} run directories read from {', '.join(map(str, roots))} ({complete} complete)")
        print(paths["markdown"].read_text())
        for path in [*paths.values(), *figures]:
            print(f"wrote {path}")
        return 0
