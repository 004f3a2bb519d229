"""NB101 ground truth: one row per isomorphism class (official graph hash), accuracies averaged over runs.

Two sources, one table (`index, arch, hash, runs, nb101_val[, nb101_test], params`):
* `$HARNESS_DATA/nb101/nb101_full.csv`, written by `python -m harness.spaces.nb101.tfrecord` from the
  official `nasbench_only108.tfrecord` (all cells, mean of the 3 runs), used when present;
* otherwise `$HARNESS_DATA/nb101/nb101_sample500.csv`, 500 unpruned rows of one run each (NASLib's query),
  pruned, hashed and averaged per hash here (`runs` = rows averaged).
Index = row order of the table, sorted by hash (independent of the source's row order).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.data.paths import data_root
from harness.errors import HarnessError, one_of
from harness.spaces.nb101.cell import Cell

SAMPLE_FILE = "nb101/nb101_sample500.csv"
FULL_FILE = "nb101/nb101_full.csv"
TABLE_COLUMNS = ("index", "arch", "hash", "runs")


@dataclass
class NB101GroundTruth:
    table: pd.DataFrame
    path: Path
    # graph hash -> the source CSV's data rows (0 = first row after the header) averaged into that table row;
    # None for the converted full table, whose rows are the table's own.
    source_rows: dict | None = None

    def __post_init__(self) -> None:
        self.columns = tuple(c for c in ("nb101_val", "nb101_test") if c in self.table.columns)
        self._by_hash = {h: i for i, h in enumerate(self.table["hash"])}
        self._cells = [Cell.parse(s) for s in self.table["arch"]]

    def index_of(self, cell: Cell) -> int:
        return int(self._by_hash.get(cell.hash, -1))

    def arch_of(self, index: int) -> Cell:
        if not 0 <= index < len(self.table):
            raise HarnessError(f"NB101 ground-truth index {index} out of range; accepted 0..{len(self.table) - 1}")
        return self._cells[index]

    def values(self, cells: list[Cell], column: str) -> np.ndarray:
        if column not in self.columns:
            raise one_of("NB101 ground-truth column", column, self.columns)
        idx = np.array([self.index_of(c) for c in cells], dtype=np.int64)
        if (idx < 0).any():
            missing = cells[int(np.flatnonzero(idx < 0)[0])]
            raise HarnessError(f"NB101 cell {missing} (hash {missing.hash}) is not in the ground truth {self.path}")
        return self.table[column].to_numpy()[idx]

    def best(self, column: str) -> float:
        return float(self.table[column].max())


def deduplicate(cells: list[Cell], columns: dict[str, np.ndarray], runs: np.ndarray | None = None, params=None) -> pd.DataFrame:
    """Rows -> one row per hash: mean of each column weighted by its runs, runs summed, first cell kept."""
    runs = np.ones(len(cells), dtype=np.int64) if runs is None else np.asarray(runs, dtype=np.int64)
    frame = pd.DataFrame({"hash": [c.hash for c in cells], "arch": [str(c) for c in cells], "runs": runs})
    for name, values in columns.items():
        frame[name] = np.asarray(values, dtype=np.float64) * runs
    if params is not None:
        frame["params"] = np.asarray(params, dtype=np.int64)
    agg = {"arch": "first", "runs": "sum", **{name: "sum" for name in columns}}
    if params is not None:
        agg["params"] = "first"
    out = frame.groupby("hash", sort=True).agg(agg).reset_index()
    for name in columns:
        out[name] = out[name] / out["runs"]
    out.insert(0, "index", np.arange(len(out)))
    return out[["index", "arch", "hash", "runs", *columns, *(["params"] if params is not None else [])]]


def read_sample(path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path, dtype={"adjacency": str, "ops": str})
    except Exception as exc:  # noqa: BLE001
        raise HarnessError(f"corrupt NB101 sample file {path}: {exc}") from None
    missing = [c for c in ("adjacency", "ops", "val_accuracy") if c not in raw.columns]
    if missing:
        raise HarnessError(f"NB101 sample file {path} lacks columns {missing}; expected adjacency, ops, val_accuracy")
    cells = [Cell.parse(f"{a}|{o}") for a, o in zip(raw["adjacency"], raw["ops"])]
    table = deduplicate(cells, {"nb101_val": raw["val_accuracy"].to_numpy()})
    rows: dict[str, list[int]] = {}
    for row, cell in enumerate(cells):
        rows.setdefault(cell.hash, []).append(row)
    table.attrs["source_rows"] = rows
    return table


def load_ground_truth(root=None, path: str | Path | None = None) -> NB101GroundTruth:
    base = data_root(root)
    if path is None:
        path = base / FULL_FILE if (base / FULL_FILE).is_file() else base / SAMPLE_FILE
    path = Path(path)
    if not path.is_file():
        raise HarnessError(
            f"NB101 ground truth not found at {path} (set $HARNESS_DATA or --data-dir to the data directory); put nb101_sample500.csv there, or convert the official "
            f"nasbench_only108.tfrecord with `python -m harness.spaces.nb101.tfrecord TFRECORD {base / FULL_FILE}`"
        )
    if path.name == Path(SAMPLE_FILE).name:
        table = read_sample(path)
        return NB101GroundTruth(table, path, table.attrs.get("source_rows"))
    table = pd.read_csv(path, dtype={"arch": str, "hash": str})
    missing = [c for c in (*TABLE_COLUMNS, "nb101_val") if c not in table.columns]
    if missing:
        raise HarnessError(f"NB101 ground-truth table {path} lacks columns {missing}")
    return NB101GroundTruth(table, path)
