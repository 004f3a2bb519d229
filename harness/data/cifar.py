"""Reader for the official CIFAR-10/100 python pickle format (no torchvision needed).

Batches may hold fewer than 10,000 rows (the workplace subset does); the row count is read from the file.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.data.paths import data_root, require_dir
from harness.errors import HarnessError, one_of

FOLDERS = {"cifar10": "cifar10/cifar-10-batches-py", "cifar100": "cifar100/cifar-100-python"}
TRAIN_FILES = {"cifar10": [f"data_batch_{i}" for i in range(1, 6)], "cifar100": ["train"]}
TEST_FILES = {"cifar10": ["test_batch"], "cifar100": ["test"]}
LABEL_KEY = {"cifar10": "labels", "cifar100": "fine_labels"}
NUM_CLASSES = {"cifar10": 10, "cifar100": 100}
# Per-channel statistics of the full official training sets, in [0, 1] units.
MEAN = {"cifar10": (0.4914, 0.4822, 0.4465), "cifar100": (0.5071, 0.4865, 0.4409)}
STD = {"cifar10": (0.2470, 0.2435, 0.2616), "cifar100": (0.2673, 0.2564, 0.2762)}


@dataclass
class ImageSet:
    images: np.ndarray  # uint8, (N, 3, 32, 32)
    labels: np.ndarray  # int64, (N,)
    files: list[Path]


def read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as handle:
            raw = pickle.load(handle, encoding="latin1")
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the file is unusable
        raise HarnessError(f"corrupt CIFAR batch file {path}: {type(exc).__name__}: {exc}; re-download it with `python -m harness download`") from None
    if isinstance(raw, dict):
        # Python-2 pickles load with str keys under latin1; files re-saved from Python 3 may carry bytes keys.
        raw = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in raw.items()}
    if not isinstance(raw, dict) or "data" not in raw or label_key not in raw:
        keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise HarnessError(f"corrupt CIFAR batch file {path}: expected keys 'data' and {label_key!r}, found {keys}")
    data = np.asarray(raw["data"], dtype=np.uint8)
    labels = np.asarray(raw[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise HarnessError(
            f"corrupt CIFAR batch file {path}: data shape {data.shape} with {len(labels)} labels; expected (N, 3072) and N labels"
        )
    return data.reshape(-1, 3, 32, 32), labels


def load_split(dataset: str, split: str, root: str | Path | None = None) -> ImageSet:
    if dataset not in FOLDERS:
        raise one_of("dataset", dataset, FOLDERS)
    if split not in ("train", "test"):
        raise one_of("split", split, ("train", "test"))
    folder = require_dir(
        data_root(root) / FOLDERS[dataset], f"{dataset} data", f"get it with `python -m harness download {dataset}`"
    )
    names = TRAIN_FILES[dataset] if split == "train" else TEST_FILES[dataset]
    images, labels, files = [], [], []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise HarnessError(f"missing {dataset} file {path}; get it with `python -m harness download {dataset}`")
        x, y = read_batch(path, LABEL_KEY[dataset])
        if len(y) and (y.min() < 0 or y.max() >= NUM_CLASSES[dataset]):
            bad = int(y.min()) if y.min() < 0 else int(y.max())
            raise HarnessError(
                f"CIFAR batch file {path} has label {bad}; accepted for {dataset}: 0..{NUM_CLASSES[dataset] - 1} -- is it the other CIFAR's file?"
            )
        images.append(x)
        labels.append(y)
        files.append(path)
    return ImageSet(np.concatenate(images), np.concatenate(labels), files)
