"""NB101 networks: the benchmark's standalone network (nasbench_pytorch) and a single-path supernet.

Macro (the benchmark's): stem conv3x3-BN-ReLU to C channels -> `stacks` stacks of `cells_per_stage` cells,
2x2 max-pool and channel doubling between stacks -> global average pool -> linear. Inside a cell, vertex
channels follow the benchmark's rule (`vertex_channels`): the output's C_out channels are split among the
vertices feeding it (the first `C_out mod k` get one more), every other vertex takes the max over its
successors, a larger tensor feeding a smaller vertex is truncated, and every edge out of the cell input is a
1x1 conv-BN-ReLU projection to the receiving vertex's width. The output concatenates its feeders and adds
the projected input if the input feeds it directly.

The supernet holds, at every cell position and every interior vertex slot, the three candidate ops at the
widest width any cell can ask of that slot (C_out) plus a C_in -> C_out input projection per slot; a path
(a pruned cell, its i-th interior vertex in slot i) uses the first c_v channels of each. Narrower tensors are
zero-padded to C_out before a shared conv module runs, and its output is cut back to c_v: zero input
channels add nothing and cut output channels receive no gradient, so this computes exactly the sliced
weights' function while every shared weight stays an ordinary nn.Conv2d called as a module (hooks and
per-module gradients see the whole tensor). Copying a standalone network's weights into those slices gives
the same function (tests/test_nb101_network.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import HarnessError, one_of
from harness.spaces.nb101.cell import CONV3X3, MAXPOOL3X3, MAX_VERTICES, Cell

BN_MODES = ("batch", "running")
# TF's batch-norm decay 0.997 keeps 99.7% of the running average per step; PyTorch's `momentum` is the
# weight of the *new* batch, so the equivalent is 1 - 0.997. nasbench_pytorch passes 0.997 through
# unchanged (running stats become the last batch's) and leaves the vertex ops at PyTorch's 0.1.
BN_MOMENTUM = 1.0 - 0.997
BN_EPS = 1e-5


@dataclass(frozen=True)
class NetworkShape:
    channels: int = 128  # stem output channels (the benchmark: 128)
    cells_per_stage: int = 3  # cells per stack (the benchmark: 3)
    num_classes: int = 10
    bn_mode: str = "batch"  # "batch": batch statistics always, no running stats; "running": ordinary BN
    stacks: int = 3

    def __post_init__(self) -> None:
        if self.bn_mode not in BN_MODES:
            raise one_of("bn_mode", self.bn_mode, BN_MODES)
        for name in ("channels", "cells_per_stage", "num_classes", "stacks"):
            if int(getattr(self, name)) < 1:
                raise HarnessError(f"network {name}={getattr(self, name)!r} must be a positive integer")

    def cell_widths(self) -> list[tuple[int, int]]:
        """(C_in, C_out) of every cell in order."""
        widths, c = [], self.channels
        for stack in range(self.stacks):
            c_out = c * 2 if stack > 0 else c
            for _ in range(self.cells_per_stage):
                widths.append((c, c_out))
                c = c_out
        return widths


def vertex_channels(c_in: int, c_out: int, matrix: np.ndarray) -> list[int]:
    """Channels of every vertex of a pruned cell, by the benchmark's rule (see module docstring)."""
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[-1] = c_in, c_out
    if n == 2:
        return channels
    feeders = [v for v in range(1, n - 1) if matrix[v, n - 1]]
    base, extra = divmod(c_out, len(feeders))
    for i, v in enumerate(feeders):
        channels[v] = base + (1 if i < extra else 0)
    for v in range(n - 3, 0, -1):
        if not matrix[v, n - 1]:
            channels[v] = max(channels[w] for w in range(v + 1, n - 1) if matrix[v, w])
    return channels


def _bn(channels: int, mode: str) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM, track_running_stats=(mode == "running"))


class ConvBnRelu(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, mode: str):
        super().__init__(nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2, bias=False), _bn(c_out, mode), nn.ReLU())


def _widen(x: torch.Tensor, channels: int) -> torch.Tensor:
    return x if x.shape[1] == channels else F.pad(x, (0, 0, 0, 0, 0, channels - x.shape[1]))


class SuperCell(nn.Module):
    """One cell position: 5 vertex slots x {conv3x3, conv1x1, maxpool} + an input projection per slot and
    one for the output, all at C_out."""

    def __init__(self, c_in: int, c_out: int, mode: str):
        super().__init__()
        self.c_in, self.c_out = c_in, c_out
        slots = MAX_VERTICES - 2
        self.ops = nn.ModuleList(
            nn.ModuleDict({"conv3x3": ConvBnRelu(c_out, c_out, 3, mode), "conv1x1": ConvBnRelu(c_out, c_out, 1, mode)})
            for _ in range(slots)
        )
        self.proj = nn.ModuleList(ConvBnRelu(c_in, c_out, 1, mode) for _ in range(slots + 1))  # last: the output's

    def forward(self, x: torch.Tensor, cell: Cell) -> torch.Tensor:
        m, n = cell.matrix, cell.num_vertices
        widths = vertex_channels(self.c_in, self.c_out, m)
        tensors: list[torch.Tensor] = [x]
        for t in range(1, n - 1):
            c = widths[t]
            # Same summation order as the benchmark's PyTorch cell: interior feeders ascending, then the input.
            terms = [tensors[s][:, :c] for s in range(1, t) if m[s, t]]
            if m[0, t]:
                terms.append(self.proj[t - 1](x)[:, :c])
            total = torch.zeros_like(terms[0])
            for term in terms:
                total = total + term
            op = cell.ops[t]
            if op == MAXPOOL3X3:
                out = F.max_pool2d(total, 3, 1, 1)
            else:
                out = self.ops[t - 1]["conv3x3" if op == CONV3X3 else "conv1x1"](_widen(total, self.c_out))[:, :c]
            tensors.append(out)
        feeders = [tensors[t] for t in range(1, n - 1) if m[t, n - 1]]
        if not feeders:
            return self.proj[-1](x)
        out = feeders[0] if len(feeders) == 1 else torch.cat(feeders, 1)
        if m[0, n - 1]:
            out = out + self.proj[-1](x)
        return out


class NB101Supernet(nn.Module):
    def __init__(self, shape: NetworkShape):
        super().__init__()
        self.shape = shape
        self.stem = ConvBnRelu(3, shape.channels, 3, shape.bn_mode)
        self.cells = nn.ModuleList(SuperCell(c_in, c_out, shape.bn_mode) for c_in, c_out in shape.cell_widths())
        self.classifier = nn.Linear(self.cells[-1].c_out, shape.num_classes)
        _init(self)

    def cell_modules(self) -> list[nn.Module]:
        return list(self.cells)

    def forward(self, x: torch.Tensor, cell: Cell) -> torch.Tensor:
        x = self.stem(x)
        for i, module in enumerate(self.cells):
            if i > 0 and i % self.shape.cells_per_stage == 0:
                x = F.max_pool2d(x, 2, 2)
            x = module(x, cell)
        return self.classifier(x.mean((2, 3)))


def _init(model: nn.Module) -> None:
    """nasbench_pytorch's (non-TF-like) initialisation, so supernet and standalone start alike."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, (2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)) ** 0.5)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


def _nasbench_pytorch():
    """The `nasbench_pytorch.model` package, imported only when an NB101 standalone network is asked for."""
    try:
        import nasbench_pytorch.model as package
        import nasbench_pytorch.model.model  # noqa: F401 - Placeholder and Cell live there
    except ImportError:
        raise HarnessError("NB101 standalone networks need nasbench_pytorch, which is not installed; "
                           "accepted: `pip install --no-deps nasbench_pytorch==1.3.1` (or `make setup`)") from None
    return package


def build_standalone(cell: Cell, shape: NetworkShape) -> nn.Module:
    """The benchmark's network for one cell: `nasbench_pytorch.model.Network`, with two corrections.

    * BN momentum: every BN gets PyTorch momentum 1 - 0.997 (TF decay 0.997); the package passes 0.997 to
      the stem and projections (inverted meaning) and 0.1 to vertex ops. In `batch` mode BN keeps no
      running statistics at all (the harness's weight-sharing convention, recorded as shape.bn_mode).
    * The package's `Placeholder` modules (identity stand-ins at vertex 0 and for vertices the input does
      not feed) each own a dummy scalar parameter that is never used; they are replaced by nn.Identity, so
      the parameter count is the network's real one (the benchmark's `trainable_parameters`).
    """
    package = _nasbench_pytorch()
    Network, Placeholder = package.Network, package.model.Placeholder

    if shape.stacks < 1:
        raise HarnessError(f"network stacks={shape.stacks!r} must be positive")
    net = Network(
        (cell.matrix.copy(), list(cell.ops)),
        num_labels=shape.num_classes,
        stem_out_channels=shape.channels,
        num_stacks=shape.stacks,
        num_modules_per_stack=shape.cells_per_stage,
        momentum=BN_MOMENTUM,
        eps=BN_EPS,
    )
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Placeholder):
                setattr(parent, name, nn.Identity())
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = BN_MOMENTUM
            if shape.bn_mode == "batch":
                module.track_running_stats = False
                module.register_buffer("running_mean", None)
                module.register_buffer("running_var", None)
                module.register_buffer("num_batches_tracked", None)
    return net


def standalone_cells(net: nn.Module) -> list[nn.Module]:
    PackageCell = _nasbench_pytorch().model.Cell
    return [m for m in net.layers if isinstance(m, PackageCell)]


def copy_into_supernet(net: nn.Module, supernet: NB101Supernet, cell: Cell) -> None:
    """Writes a standalone network's weights into the slices of `supernet` that path `cell` uses."""

    def put(dst: nn.Sequential, src: nn.Sequential) -> None:
        for d, s in zip(dst, src):
            if isinstance(d, nn.Conv2d):
                o, i = s.weight.shape[:2]
                d.weight.data[:o, :i] = s.weight.data
            elif isinstance(d, nn.BatchNorm2d):
                c = s.weight.shape[0]
                d.weight.data[:c] = s.weight.data
                d.bias.data[:c] = s.bias.data
                if s.running_mean is not None and d.running_mean is not None:
                    d.running_mean[:c] = s.running_mean
                    d.running_var[:c] = s.running_var

    put(supernet.stem, net.layers[0].conv_bn_relu)
    n = cell.num_vertices
    for target, source in zip(supernet.cells, standalone_cells(net)):
        for t in range(1, n - 1):
            if cell.ops[t] != MAXPOOL3X3:
                kind = "conv3x3" if cell.ops[t] == CONV3X3 else "conv1x1"
                inner = source.vertex_op[t]
                put(target.ops[t - 1][kind], (inner.conv3x3 if cell.ops[t] == CONV3X3 else inner.conv1x1).conv_bn_relu)
            if cell.matrix[0, t]:
                put(target.proj[t - 1], source.input_op[t].conv_bn_relu)
        if cell.matrix[0, n - 1]:
            put(target.proj[-1], source.input_op[n - 1].conv_bn_relu)
    supernet.classifier.weight.data.copy_(net.classifier.weight.data)
    supernet.classifier.bias.data.copy_(net.classifier.bias.data)

