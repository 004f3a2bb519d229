"""Builders of small data files in the official formats, for tests that must not touch the internet."""
from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np


def write_cifar_batch(path: Path, rows: int, seed: int = 0, label_key: str = "labels", classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(rows, 3072), dtype=np.uint8)
    labels = rng.integers(0, classes, size=rows).tolist()
    # Python-2 style: byte-string keys, as the official cPickle files load with encoding='bytes'.
    payload = {b"batch_label": b"synthetic", label_key.encode(): labels, b"data": data, b"filenames": [b"x.png"] * rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(payload, handle, protocol=2)
    return data, np.asarray(labels)


def write_cifar10_folder(root: Path, rows_per_batch: int = 40) -> Path:
    folder = root / "cifar10" / "cifar-10-batches-py"
    for i in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{i}", rows_per_batch, seed=i)
    write_cifar_batch(folder / "test_batch", rows_per_batch, seed=99)
    return folder


def cifar10_archive(path: Path, rows_per_batch: int = 8) -> Path:
    """A small .tar.gz laid out like the official cifar-10-python.tar.gz."""
    staging = path.parent / "staging"
    folder = write_cifar10_folder(staging, rows_per_batch)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return path


def tar_with_member(path: Path, name: str, content: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return path
