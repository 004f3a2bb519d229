"""What produced a result: git commit, library versions, device, and checksums of the data read."""
from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

from harness.runs.fileio import sha256_file

PACKAGES = ("torch", "numpy", "scipy", "pandas", "matplotlib", "tqdm")


def git_state(cwd: Path | None = None) -> dict:
    cwd = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if commit.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def accelerator(device: torch.device) -> dict:
    """GPU name, driver, CUDA and cuDNN versions on CUDA; None each on other devices."""
    info = {"gpu_name": None, "gpu_driver": None, "cuda_version": None, "cudnn_version": None}
    if device.type != "cuda":
        return info
    info["gpu_name"] = torch.cuda.get_device_name(device)
    info["cuda_version"] = torch.version.cuda
    info["cudnn_version"] = torch.backends.cudnn.version()
    info["gpu_driver"] = _driver_version()
    return info


def _driver_version() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def environment(device: torch.device, data_files: list[Path]) -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "git": git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "device": {"type": device.type, "name": device_name(device), "torch_threads": torch.get_num_threads(), **accelerator(device)},
        "data_files": {str(p): sha256_file(p) for p in data_files},
    }
