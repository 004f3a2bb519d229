"""The NAS-Bench-201 macro skeleton, used both as a weight-sharing supernet and as a standalone network.

stem (3x3 conv + BN) -> [N cells at C] -> resblock(stride 2) -> [N cells at 2C] -> resblock -> [N cells
at 4C] -> BN-ReLU -> global pool -> linear. A supernet holds every candidate op on every edge; a
standalone network is the same class holding only its own op per edge, so both run identical code.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.errors import HarnessError, one_of
from harness.spaces.nb201.arch import EDGES, NONE, NUM_EDGES, NUM_NODES, OPS, Arch

BN_MODES = ("batch", "running")


@dataclass(frozen=True)
class NetworkShape:
    channels: int = 16
    cells_per_stage: int = 5
    num_classes: int = 10
    # "batch": every BN normalises with the current batch's statistics and keeps no running stats, and
    # cell BNs have no affine parameters -- the NB201 weight-sharing convention. "running": ordinary BN.
    bn_mode: str = "batch"

    def __post_init__(self) -> None:
        if self.bn_mode not in BN_MODES:
            raise one_of("bn_mode", self.bn_mode, BN_MODES)
        for name in ("channels", "cells_per_stage", "num_classes"):
            if int(getattr(self, name)) < 1:
                raise HarnessError(f"network {name}={getattr(self, name)!r} must be a positive integer")


def _bn(channels: int, mode: str, affine: bool) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, affine=affine, track_running_stats=(mode == "running"))


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, mode: str, affine: bool):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            _bn(c_out, mode, affine),
        )


def make_op(name: str, channels: int, mode: str, affine: bool) -> nn.Module:
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, mode, affine)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, mode, affine)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise one_of("NB201 op", name, [op for op in OPS if op != "none"])


def live_edges(ops: tuple[int, ...]) -> list[int]:
    """Edges whose result reaches the output node; the rest need not run (their value is never read)."""
    live_nodes = {NUM_NODES - 1}
    keep: list[int] = []
    for e in reversed(range(NUM_EDGES)):
        dst, src = EDGES[e]
        if dst in live_nodes and ops[e] != NONE:
            keep.append(e)
            live_nodes.add(src)
    return sorted(keep)


class Cell(nn.Module):
    """One NB201 cell. `candidates[e]` lists the op indices edge e holds (all 5 in a supernet)."""

    def __init__(self, channels: int, candidates: list[tuple[int, ...]], mode: str, affine: bool):
        super().__init__()
        self.edges = nn.ModuleList()
        for ops in candidates:
            self.edges.append(
                nn.ModuleDict({OPS[op]: make_op(OPS[op], channels, mode, affine) for op in ops if op != NONE})
            )

    def forward(self, x: torch.Tensor, ops: tuple[int, ...], live: list[int]) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x] + [None] * (NUM_NODES - 1)
        for e in live:
            dst, src = EDGES[e]
            inp = nodes[src]
            if inp is None:  # a node all of whose inputs are `none` is zero, and so is anything computed from it
                continue
            out = self.edges[e][OPS[ops[e]]](inp)
            nodes[dst] = out if nodes[dst] is None else nodes[dst] + out
        result = nodes[-1]
        return torch.zeros_like(x) if result is None else result

    def forward_mixed(
        self, x: torch.Tensor, weights: torch.Tensor, sampled: tuple[int, ...] | None = None, scalars: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Every edge is the weighted sum of its ops (`weights[e, op]`, `none` adds zero): the DARTS cell.

        With `sampled` (one op index per edge, host ints) only that op of each edge runs, weighted by its
        entry (GDAS's hard forward); the other entries get no gradient from it. `scalars[e]`, if given, is
        added to edge e's term as a bare scalar: AutoDL's `forward_gdas` adds the unsampled entries of the
        one-hot row that way (value 0, gradient sum(dL/d node)), so every alpha of the edge is reached even
        when `none` is sampled; without it this is `forward_gdas_v1`.
        """
        nodes: list[torch.Tensor | None] = [x] + [None] * (NUM_NODES - 1)
        for e, (dst, src) in enumerate(EDGES):
            inp = nodes[src]
            if sampled is None:
                if inp is None:
                    continue
                for name, op in self.edges[e].items():
                    out = weights[e, OPS.index(name)] * op(inp)
                    nodes[dst] = out if nodes[dst] is None else nodes[dst] + out
                continue
            chosen = sampled[e]
            if inp is not None and chosen != NONE:
                out = weights[e, chosen] * self.edges[e][OPS[chosen]](inp)
                nodes[dst] = out if nodes[dst] is None else nodes[dst] + out
            if scalars is not None:
                # A node fed only by scalars (every input `none`) is still a feature map, of value zero.
                nodes[dst] = torch.zeros_like(x) + scalars[e] if nodes[dst] is None else nodes[dst] + scalars[e]
        result = nodes[-1]
        return torch.zeros_like(x) if result is None else result


class ResBlock(nn.Module):
    """NB201's residual reduction block: two 3x3 ReLU-conv-BNs, shortcut = 2x2 avg-pool + 1x1 conv."""

    def __init__(self, c_in: int, c_out: int, mode: str):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, mode, affine=True)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, mode, affine=True)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    def __init__(self, shape: NetworkShape, candidates: list[tuple[int, ...]] | None = None, cell_affine: bool | None = None):
        super().__init__()
        self.shape = shape
        candidates = candidates or [tuple(range(len(OPS)))] * NUM_EDGES
        self.candidates = [tuple(c) for c in candidates]
        mode = shape.bn_mode
        if cell_affine is None:
            cell_affine = mode == "running"
        c = shape.channels
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), _bn(c, mode, affine=True))
        layers: list[nn.Module] = []
        for stage in range(3):
            if stage > 0:
                layers.append(ResBlock(c, c * 2, mode))
                c *= 2
            layers.extend(Cell(c, self.candidates, mode, cell_affine) for _ in range(shape.cells_per_stage))
        self.layers = nn.ModuleList(layers)
        self.head = nn.Sequential(_bn(c, mode, affine=True), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(c, shape.num_classes)
        self._live_cache: dict[tuple[int, ...], list[int]] = {}

    def features(self, x: torch.Tensor, arch: Arch) -> list[torch.Tensor]:
        """Output of the stem and of every layer (cell or resblock), for layer-wise analyses."""
        ops = self._check(arch)
        live = self._live(ops)
        outs = [self.stem(x)]
        for layer in self.layers:
            outs.append(layer(outs[-1], ops, live) if isinstance(layer, Cell) else layer(outs[-1]))
        return outs

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        ops = self._check(arch)
        live = self._live(ops)
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, ops, live) if isinstance(layer, Cell) else layer(x)
        x = self.head(x).mean(dim=(2, 3))
        return self.classifier(x)

    def forward_mixed(
        self, x: torch.Tensor, weights: torch.Tensor, sampled=None, unsampled_as_scalars: bool = False
    ) -> torch.Tensor:
        """The continuous relaxation on the same modules: `weights` is (edges x ops), shared by every cell.

        `sampled` (one op index per edge, known on the host) runs only those ops (GDAS); with
        `unsampled_as_scalars` the other entries of each row are added as scalars (see Cell.forward_mixed).
        """
        if tuple(weights.shape) != (NUM_EDGES, len(OPS)):
            raise HarnessError(f"mixed-op weights have shape {tuple(weights.shape)}; expected ({NUM_EDGES}, {len(OPS)})")
        scalars = None
        if sampled is not None:
            sampled = tuple(int(op) for op in sampled)
            if len(sampled) != NUM_EDGES or any(not 0 <= op < len(OPS) for op in sampled):
                raise HarnessError(f"sampled ops {sampled} must be {NUM_EDGES} op indices in 0..{len(OPS) - 1}")
            if unsampled_as_scalars:
                others = torch.ones_like(weights)
                others[torch.arange(NUM_EDGES), torch.tensor(sampled)] = 0  # host indices: no device sync
                scalars = (weights * others).sum(dim=1)
        elif unsampled_as_scalars:
            raise HarnessError("unsampled_as_scalars needs the sampled op of every edge (sampled=...)")
        x = self.stem(x)
        for layer in self.layers:
            x = layer.forward_mixed(x, weights, sampled, scalars) if isinstance(layer, Cell) else layer(x)
        x = self.head(x).mean(dim=(2, 3))
        return self.classifier(x)

    def _live(self, ops: tuple[int, ...]) -> list[int]:
        live = self._live_cache.get(ops)
        if live is None:
            live = self._live_cache[ops] = live_edges(ops)
        return live

    def _check(self, arch: Arch) -> tuple[int, ...]:
        ops = arch.ops
        for e, op in enumerate(ops):
            if op not in self.candidates[e]:
                raise HarnessError(
                    f"architecture {arch} uses {OPS[op]!r} on edge {e}, which this network does not hold; "
                    f"it holds {[OPS[o] for o in self.candidates[e]]}"
                )
        return ops

    def cell_modules(self) -> list[Cell]:
        return [layer for layer in self.layers if isinstance(layer, Cell)]


class Standalone(nn.Module):
    """One architecture as an ordinary module (forward(x)), built from the same skeleton code."""

    def __init__(self, arch: Arch, shape: NetworkShape, cell_affine: bool = True):
        super().__init__()
        self.arch = arch
        self.net = NB201Network(shape, candidates=[(op,) for op in arch.ops], cell_affine=cell_affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.arch)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_flops(model: nn.Module, input_size: int = 32, run=None) -> int:
    """Multiply-accumulates of convs and linears for one image (the 'FLOPs' NB201 tabulates, in MACs)."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inp, out):
        nonlocal total
        kh, kw = module.kernel_size
        total += out.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, _inp, out):
        nonlocal total
        total += out.numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            x = torch.zeros(1, 3, input_size, input_size)
            (run or model)(x)
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return total
