"""A guard that finds tensors created on an implicit device (tests only).

On a CPU-only machine the model and the default device coincide, so a `torch.zeros(n)` that would land on
the CPU while the model is on a GPU goes unnoticed. The guard is a TorchFunctionMode: every tensor factory
called from harness code (not from inside torch, e.g. a module's own initialisation) must name its device
(`device=`, or `generator=` for the random ones whose generator fixes it); `*_like`, `.new_*` and
operations on existing tensors inherit their input's device and are fine. A call that names no device is
recorded with its file and line.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

FACTORIES = {
    torch.zeros, torch.ones, torch.empty, torch.full, torch.rand, torch.randn, torch.randint, torch.randperm,
    torch.arange, torch.tensor, torch.as_tensor, torch.eye, torch.linspace, torch.logspace, torch.empty_strided,
    torch.from_numpy,
}
HARNESS = str(Path(__file__).resolve().parents[1] / "harness")


class ImplicitDeviceGuard(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.findings: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and kwargs.get("device") is None:
            caller = sys._getframe(1)
            path = caller.f_code.co_filename
            if path.startswith(HARNESS):
                name = getattr(func, "__name__", str(func))
                self.findings.add(f"{Path(path).relative_to(Path(HARNESS).parent)}:{caller.f_lineno} torch.{name}")
        return func(*args, **kwargs)
