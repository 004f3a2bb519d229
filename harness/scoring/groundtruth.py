"""NAS-Bench-201 ground truth: one row per architecture, benchmark index -> arch string -> accuracies."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.data.paths import ENV_VAR, data_root
from harness.errors import HarnessError, one_of
from harness.spaces.nb201.arch import NUM_ARCHS, Arch, all_archs

GT_FILE = "nb201/nb201_accuracy.csv"
COLUMNS = ("cifar10_test", "cifar100_test", "imagenet16_120_test")
HOW_TO_GET = (
    "build it from the official NAS-Bench-201/NATS-Bench file with "
    "`python -m harness convert-gt --benchmark PATH --out $HARNESS_DATA/nb201/nb201_accuracy.csv`"
)


@dataclass
class GroundTruth:
    table: pd.DataFrame  # index, arch, and one column per COLUMNS entry; row order = benchmark index
    path: Path

    def __post_init__(self) -> None:
        self._by_code = np.full(NUM_ARCHS, -1, dtype=np.int64)
        codes = np.array([Arch.parse(s).code for s in self.table["arch"]], dtype=np.int64)
        self._by_code[codes] = self.table["index"].to_numpy()
        self.codes = codes

    def index_of(self, arch: Arch) -> int:
        return int(self._by_code[arch.code])

    def arch_of(self, index: int) -> Arch:
        if not 0 <= index < len(self.table):
            raise HarnessError(f"benchmark index {index} out of range; accepted 0..{len(self.table) - 1}")
        return Arch.from_code(int(self.codes[index]))

    def values(self, archs: list[Arch], column: str) -> np.ndarray:
        if column not in COLUMNS:
            raise one_of("ground-truth column", column, COLUMNS)
        idx = np.array([self.index_of(a) for a in archs])
        return self.table[column].to_numpy()[idx]

    def best(self, column: str) -> float:
        return float(self.table[column].max())


def load_ground_truth(path: str | Path | None = None, root=None) -> GroundTruth:
    path = Path(path) if path else data_root(root) / GT_FILE
    if not path.is_file():
        where = "" if path != data_root(root) / GT_FILE else f" (set ${ENV_VAR} or --data-dir to the data directory; now {data_root(root)})"
        raise HarnessError(f"ground-truth file not found at {path}{where}; {HOW_TO_GET}")
    try:
        # Only empty cells are missing: a word such as "n/a" is reported as the bad value it is.
        table = pd.read_csv(path, dtype={"index": np.int64, "arch": str}, keep_default_na=False, na_values=[""])
    except Exception as exc:  # noqa: BLE001
        raise HarnessError(f"corrupt ground-truth file {path}: {exc}; {HOW_TO_GET}") from None
    missing = [c for c in ("index", "arch", *COLUMNS) if c not in table.columns]
    if missing:
        raise HarnessError(f"ground-truth file {path} lacks columns {missing}; expected index, arch, {', '.join(COLUMNS)}")
    if len(table) != NUM_ARCHS or not np.array_equal(table["index"].to_numpy(), np.arange(NUM_ARCHS)):
        raise HarnessError(f"ground-truth file {path} has {len(table)} rows; expected {NUM_ARCHS} with index 0..{NUM_ARCHS - 1} in order")
    if table[list(COLUMNS)].isna().any().any():
        raise HarnessError(f"ground-truth file {path} has empty accuracy cells; {HOW_TO_GET}")
    for column in COLUMNS:
        check_accuracies(table, column, path)
    gt = GroundTruth(table, path)
    if len(set(gt.codes.tolist())) != NUM_ARCHS:
        raise HarnessError(f"ground-truth file {path} repeats architectures; every one of the {NUM_ARCHS} must appear once")
    return gt


def check_accuracies(table: pd.DataFrame, column: str, path) -> None:
    """Accuracies are numbers in 0..100 (percent); anything else would be ranked silently."""
    values = pd.to_numeric(table[column], errors="coerce")
    bad = values.isna() | (values < 0) | (values > 100)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raw = table[column].iloc[row]
        raw = raw.item() if hasattr(raw, "item") else raw
        raise HarnessError(
            f"ground-truth file {path}: {column}={raw!r} at index {row} is not an accuracy; accepted: numbers in 0..100 (percent)"
        )
    table[column] = values.astype(np.float64)


def check_against_enumeration(gt: GroundTruth) -> None:
    """The table's architectures are exactly the enumerated space (raises if not)."""
    ours = {a.code for a in all_archs()}
    if ours != set(gt.codes.tolist()):
        raise HarnessError(f"ground-truth file {gt.path} does not cover the enumerated NB201 space")
