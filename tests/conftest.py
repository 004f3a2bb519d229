"""Shared fixtures. Tests needing the workplace data read it from $HARNESS_DATA (or ../shared/data)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path | None:
    for candidate in (os.environ.get("HARNESS_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "nb201" / "nb201_accuracy.csv").is_file():
            return Path(candidate)
    return None


DATA_DIR = _data_dir()
needs_data = pytest.mark.skipif(DATA_DIR is None, reason="workplace data not found (set HARNESS_DATA)")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if DATA_DIR is None:
        pytest.skip("workplace data not found (set HARNESS_DATA)")
    return DATA_DIR


@pytest.fixture(scope="session")
def ground_truth(data_dir):
    from harness.scoring.groundtruth import load_ground_truth

    return load_ground_truth(root=data_dir)


@pytest.fixture
def env_data(data_dir, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA", str(data_dir))
    return data_dir


@pytest.fixture(autouse=True)
def _few_threads():
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _plugins_stay_in_their_test():
    """A --plugin module loaded by one test must not enter the identity of later tests' runs (sweeps default to
    the plug-ins loaded in the process, as the CLI's --plugin does)."""
    from harness import plugins

    before = list(plugins._loaded)
    yield
    plugins._loaded[:] = before
