"""Build the ground-truth table from the official benchmark files, through their own packages.

Works with either API object: `nas_201_api.NASBench201API` (file NAS-Bench-201-v1_1-096897.pth) or
`nats_bench.create(path, 'tss')` (NATS-tss-v1_0-3ffb9-simple). Both expose `len(api)`, `api.arch(i)` and
`api.get_more_info(i, dataset, hp=..., is_random=False)`, whose 'test-accuracy' is the seed-mean accuracy
on the official test set for the 'cifar10' key (trained on the full training split), and on the
ImageNet16-120 / CIFAR-100 test halves for the other keys.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import HarnessError
from harness.runs.fileio import atomic_write, write_json
from harness.spaces.nb201.arch import NUM_ARCHS, Arch

# Table column -> the benchmark's dataset key.
DATASET_KEYS = {"cifar10_test": "cifar10", "cifar100_test": "cifar100", "imagenet16_120_test": "ImageNet16-120"}


def table_from_api(api: Any, hp: str = "200") -> pd.DataFrame:
    n = len(api)
    if n != NUM_ARCHS:
        raise HarnessError(f"benchmark API holds {n} architectures; expected {NUM_ARCHS} (the NB201 topology space)")
    rows = []
    for index in range(n):
        arch = str(Arch.parse(str(api.arch(index))))
        row: dict[str, Any] = {"index": index, "arch": arch}
        for column, key in DATASET_KEYS.items():
            info = api.get_more_info(index, key, hp=hp, is_random=False)
            if "test-accuracy" not in info:
                raise HarnessError(f"benchmark API gave no 'test-accuracy' for index {index}, dataset {key!r}, hp={hp!r}")
            row[column] = float(info["test-accuracy"])
        rows.append(row)
    return pd.DataFrame(rows)


def open_api(path: Path, kind: str) -> Any:
    try:
        if kind == "nats":
            from nats_bench import create  # type: ignore[import-not-found]

            return create(str(path), "tss", fast_mode=True, verbose=False)
        from nas_201_api import NASBench201API  # type: ignore[import-not-found]

        return NASBench201API(str(path), verbose=False)
    except ImportError:
        package = "nats_bench" if kind == "nats" else "nas-bench-201"
        raise HarnessError(f"converting needs the benchmark's own package: pip install {package}") from None


def convert(benchmark: Path, out: Path, kind: str = "nats", hp: str = "200") -> pd.DataFrame:
    if not Path(benchmark).exists():
        raise HarnessError(f"benchmark file {benchmark} not found; download NATS-tss-v1_0-3ffb9-simple or NAS-Bench-201-v1_1-096897.pth first")
    table = table_from_api(open_api(Path(benchmark), kind), hp)
    atomic_write(Path(out), lambda tmp: table.to_csv(tmp, index=False))
    write_json(Path(out).with_suffix(".provenance.json"), {"source": str(benchmark), "api": kind, "hp": hp, "dataset_keys": DATASET_KEYS})
    return table
