"""Run a grid of benchmark cells (strategy x preset x seed x overrides), skipping finished ones.

Stand-in, replaced by the Ray sweep at merge: same API, runs the cells one after another in this process.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from harness.fileio import read_json
from harness.run import BenchRequest, bench, run_name


@dataclass(frozen=True)
class Cell:
    strategy: str
    space: str = "nb201"
    preset: str = "mini"
    seed: int = 0
    overrides: tuple[str, ...] = ()
    label: str = ""


@dataclass
class CellResult:
    cell: Cell
    run_dir: Path
    state: str
    error: str | None
    kendall_tau: float | None


def request(cell: Cell, runs_dir: Path, data_dir: str | None = None, progress: bool = False) -> BenchRequest:
    return BenchRequest(strategy=cell.strategy, space=cell.space, preset=cell.preset, seed=cell.seed,
                        overrides=tuple(cell.overrides), runs_dir=Path(runs_dir), data_dir=data_dir, progress=progress)


def run_cells(cells: Sequence[Cell], runs_dir: Path, *, address: str | None = None, cpus_per_run: float = 1.0,
              gpus_per_run: float = 0.0, progress: bool = True, data_dir: str | None = None) -> list[CellResult]:
    results = []
    for i, cell in enumerate(cells):
        req = request(cell, runs_dir, data_dir)
        run_dir = Path(runs_dir) / run_name(req)
        # An existing directory is continued (or, when complete, just read back): the sweep is resumable.
        req.resume = (run_dir / "config.json").exists()
        if progress:
            print(f"sweep: [{i + 1}/{len(cells)}] {run_dir.name}", flush=True)
        try:
            metrics = bench(req)
        except Exception as exc:  # a failed cell is a result, not the end of the sweep
            status = run_dir / "status.json"
            error = read_json(status).get("error") if status.exists() else None
            results.append(CellResult(cell, run_dir, "failed", error or f"{type(exc).__name__}: {exc}", None))
            continue
        tau = metrics.get("metrics", {}).get("kendall_tau")
        results.append(CellResult(cell, run_dir, "complete", None, None if tau is None else float(tau)))
    return results
