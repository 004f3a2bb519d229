"""The NAS-Bench-201 macro skeleton, used both as a weight-sharing supernet and as a standalone network.

stem (3x3 conv + BN) -> [N cells at C] -> resblock(stride 2) -> [N cells at 2C] -> resblock -> [N cells
at 4C] -> BN-ReLU -> global pool -> linear. A supernet holds every candidate op on every edge; a
standalone network is the same class holding only its own op per edge, so both run identical code.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
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
                for edge, op in enumerate(sampled):  # host indices: no device sync
                    others[edge, op] = 0
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

    def forward_many(self, x: torch.Tensor, archs: list[Arch]) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of every architecture on the same images `x` (B rows), in one pass: (logits (U, B, classes), index (K,)).

        Architecture k's logits are `logits[index[k]]`. Rows are routed through the ops each architecture
        uses on every edge; a value that several architectures share (the stem, every op applied to a cell's
        input, anything fed only by those, or two architectures that differ only on dead edges) is computed
        once. Batch-statistics BN normalises each group of B rows by its own statistics, so every
        architecture sees what `forward(x, arch)` computes, up to float summation order.
        """
        return batched_forward(self, x, [self._check(a) for a in archs])


def _per_group_bn(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """BN of x (groups, B, C, H, W); batch statistics are taken per group of B rows, as if each group ran alone."""
    if not bn.training and bn.running_mean is not None:  # running statistics: per sample, groups don't matter
        return bn(x.flatten(0, 1)).view_as(x)
    # One native call per group: the statistics of exactly the rows the one-architecture forward sees.
    if x.shape[0] == 1:
        return F.batch_norm(x[0], None, None, bn.weight, bn.bias, True, 0.0, bn.eps).unsqueeze(0)
    out = _empty_groups(x, x.shape[0])
    c = x.shape[2]
    save_mean, save_invstd = x.new_empty(c), x.new_empty(c)
    if bn.weight is not None and bn.weight.dtype != x.dtype:  # bf16 autocast: fp32 affine on bf16 rows
        for g in range(x.shape[0]):
            out[g] = F.batch_norm(x[g], None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
        return out
    for g in range(x.shape[0]):  # written in place: no copy of the output
        torch.ops.aten.native_batch_norm.out(x[g], bn.weight, bn.bias, None, None, True, 0.0, bn.eps,
                                             out=out[g], save_mean=save_mean, save_invstd=save_invstd)
    return out


def _empty_groups(like: torch.Tensor, groups: int) -> torch.Tensor:
    """An uninitialised (groups, B, C, H, W) tensor stored like `like`: NHWC rows (see batched_forward)."""
    b, c, h, w = like.shape[1:]
    return torch.empty((groups * b, c, h, w), dtype=like.dtype, device=like.device,
                       memory_format=torch.channels_last).view(groups, b, c, h, w)


def _flat(x: torch.Tensor) -> torch.Tensor:
    """(groups, B, C, H, W) -> (groups * B, C, H, W), NHWC."""
    return x.flatten(0, 1).contiguous(memory_format=torch.channels_last)


def _pool3x3(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-1 average pool without padding in the count (nn.AvgPool2d(3, 1, 1, count_include_pad=False)).

    A box sum of shifted slices divided by each pixel's window size: the same values up to float rounding,
    several times faster than the native CPU kernel on these small images.
    """
    h, w = x.shape[-2:]
    p = F.pad(x, (1, 1, 1, 1))
    rows = p[..., :-2, :] + p[..., 1:-1, :] + p[..., 2:, :]
    box = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]
    return box.mul_(_window_sizes(h, w, x.dtype, x.device))


_WINDOWS: dict[tuple, torch.Tensor] = {}


def _window_sizes(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """1 / (pixels of each 3x3 window inside an h x w image), cached per shape and device."""
    key = (h, w, dtype, device)
    if key not in _WINDOWS:
        ones = torch.ones(1, 1, h, w, dtype=dtype, device=device)
        _WINDOWS[key] = F.avg_pool2d(ones, 3, 1, 1, count_include_pad=True).mul_(9).reciprocal_()
    return _WINDOWS[key]


def _run_op(op: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One candidate op on (groups, B, C, H, W) rows, BN per group."""
    if isinstance(op, nn.Identity):
        return x
    if isinstance(op, nn.AvgPool2d):
        return _pool3x3(x)
    if isinstance(op, ReLUConvBN):
        relu, conv, bn = op
        y = conv(relu(_flat(x)))
        return _per_group_bn(bn, y.view(*x.shape[:2], *y.shape[1:]))
    raise HarnessError(f"batched estimation does not know op {type(op).__name__}; use per-architecture estimation")


def _run_resblock(block: ResBlock, x: torch.Tensor) -> torch.Tensor:
    short = block.shortcut(_flat(x))
    a = _run_op(block.conv_a, x)
    b = _run_op(block.conv_b, a)
    return short.view(b.shape) + b


def batched_forward(net: NB201Network, x: torch.Tensor, archs: list[tuple[int, ...]]) -> tuple[torch.Tensor, torch.Tensor]:
    """See NB201Network.forward_many. Values are kept once per distinct signature: a signature names what a
    node's value is computed from (interned to ints), so equal signatures mean equal tensors.

    Activations are stored NHWC (channels_last) whatever the input's layout: on CPU the oneDNN convolution and
    batch-norm kernels are several times faster in it, and on GPU it is cuDNN's preferred layout.
    """
    lives = [net._live(ops) for ops in archs]
    intern: dict[tuple, int] = {}

    def token(key: tuple) -> int:
        return intern.setdefault(key, len(intern))

    stem = net.stem[0](x.contiguous(memory_format=torch.channels_last))
    values = _per_group_bn(net.stem[1], stem.unsqueeze(0))  # (1, B, C, H, W): one value all archs share
    sig = [token(("stem",))] * len(archs)  # each arch's signature of `values` rows
    rows = {sig[0]: 0}  # signature -> row of `values`
    for layer_id, layer in enumerate(net.layers):
        if not isinstance(layer, Cell):
            values = _run_resblock(layer, values)
            sig = [token(("res", layer_id, s)) for s in sig]
            rows = {token(("res", layer_id, s)): r for s, r in rows.items()}
            continue
        values, sig, rows = _cell_many(layer, layer_id, values, sig, rows, archs, lives, token)
    pooled = _per_group_bn(net.head[0], values)
    feats = net.head[1](pooled).mean(dim=(3, 4))
    logits = net.classifier(feats)
    index = torch.as_tensor([rows[s] for s in sig], device=x.device)
    return logits, index


def _cell_many(cell: Cell, layer_id: int, inputs: torch.Tensor, in_sig: list[int], in_rows: dict[int, int],
               archs: list[tuple[int, ...]], lives: list[list[int]], token) -> tuple[torch.Tensor, list[int], dict[int, int]]:
    # node_sig[k][j]: signature of node j for arch k (None: the node is zero, nothing reaches it)
    node_sig: list[list[int | None]] = [[s] + [None] * (NUM_NODES - 1) for s in in_sig]
    node_vals: list[tuple[torch.Tensor, dict[int, int]] | None] = [(inputs, in_rows)] + [None] * (NUM_NODES - 1)
    for dst in range(1, NUM_NODES):
        incoming = [e for e, (d, _s) in enumerate(EDGES) if d == dst]
        # contributions[k]: list of (edge, op, source signature) in edge order
        contributions: list[list[tuple[int, int, int]]] = []
        for k, ops in enumerate(archs):
            live = lives[k]
            parts = []
            for e in incoming:
                src = EDGES[e][1]
                if e in live and node_sig[k][src] is not None:
                    parts.append((e, ops[e], node_sig[k][src]))
            contributions.append(parts)
        # each distinct (edge, op, source) is computed once
        outs: dict[tuple[int, int, int], tuple[torch.Tensor, int]] = {}
        for e in incoming:
            src = EDGES[e][1]
            wanted: dict[int, list[int]] = {}
            for parts in contributions:
                for edge, op, s in parts:
                    if edge == e and s not in wanted.setdefault(op, []):
                        wanted[op].append(s)
            src_vals, src_rows = node_vals[src] if node_vals[src] is not None else (None, {})
            for op, sigs in wanted.items():
                take = [src_rows[s] for s in sigs]
                if take == list(range(src_vals.shape[0])):  # every row, in order: no gather
                    picked = src_vals
                else:
                    picked = src_vals[torch.as_tensor(take, device=src_vals.device)]
                result = _run_op(cell.edges[e][OPS[op]], picked)
                for i, s in enumerate(sigs):
                    outs[(e, op, s)] = (result, i)
        dst_rows: dict[int, int] = {}
        order: list[tuple] = []
        for k, parts in enumerate(contributions):
            if not parts:
                continue
            s = token(("node", layer_id, dst, tuple(parts)))
            node_sig[k][dst] = s
            if s not in dst_rows:
                dst_rows[s] = len(order)
                order.append(tuple(parts))
        if not order:
            continue
        # Sum in edge order, as the one-architecture forward does.
        first = outs[order[0][0]][0]
        spare = dst == NUM_NODES - 1 and any(node_sig[k][dst] is None for k in range(len(archs)))
        if not spare and all(len(parts) == 1 for parts in order) and all(
                outs[parts[0]][0] is first and outs[parts[0]][1] == u for u, parts in enumerate(order)) and len(order) == first.shape[0]:
            node_vals[dst] = (first, dst_rows)  # one op output is the node, row for row: no copy
            continue
        # The output node gets one more row, zero, for architectures whose output nothing reaches.
        total = _empty_groups(first, len(order) + spare)
        if spare:
            total[-1].zero_()
        for u, parts in enumerate(order):
            result, i = outs[parts[0]]
            total[u].copy_(result[i])
            for part in parts[1:]:
                result, i = outs[part]
                total[u].add_(result[i])
        node_vals[dst] = (total, dst_rows)
    out_sig = [node_sig[k][-1] for k in range(len(archs))]
    if node_vals[-1] is None:
        values, rows = _empty_groups(inputs, 1).zero_(), {}
    else:
        values, rows = node_vals[-1]
    if any(s is None for s in out_sig):  # a cell whose output node nothing reaches outputs zeros: the spare row
        zero = token(("zero", layer_id))
        rows = {**rows, zero: values.shape[0] - 1}
        out_sig = [zero if s is None else s for s in out_sig]
    return values, out_sig, rows


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
            param = next(model.parameters())
            x = torch.zeros(1, 3, input_size, input_size, device=param.device, dtype=param.dtype)
            (run or model)(x)
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return total


def _every_edge_forward(net: NB201Network, x: torch.Tensor, arch: Arch) -> torch.Tensor:
    """The forward of NB201's official inference network (xautodl InferCell): every edge's op runs, also
    edges whose node never reaches the cell output and ops whose input is all-zero; `none` computes nothing."""
    ops = net._check(arch)
    x = net.stem(x)
    for layer in net.layers:
        if not isinstance(layer, Cell):
            x = layer(x)
            continue
        nodes: list[torch.Tensor | None] = [x] + [None] * (NUM_NODES - 1)
        for e, (dst, src) in enumerate(EDGES):
            if ops[e] == NONE:
                continue
            inp = nodes[src] if nodes[src] is not None else torch.zeros_like(x)
            out = layer.edges[e][OPS[ops[e]]](inp)
            nodes[dst] = out if nodes[dst] is None else nodes[dst] + out
        x = nodes[-1] if nodes[-1] is not None else torch.zeros_like(x)
    x = net.head(x).mean(dim=(2, 3))
    return net.classifier(x)


def benchmark_flops(model: Standalone, input_size: int = 32) -> int:
    """FLOPs as NAS-Bench-201 tabulates them (xautodl's flop_benchmark on its InferCell network): multiply-
    accumulates of every Conv2d and Linear, biases included, with every edge's op run (see _every_edge_forward).
    Pooling, BN and ReLU are not counted. Unlike `count_flops` of the forward, convs on dead edges count."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inp, out):
        nonlocal total
        kh, kw = module.kernel_size
        positions = out.shape[0] * out.shape[2] * out.shape[3]
        total += positions * module.out_channels * (module.in_channels // module.groups) * kh * kw
        if module.bias is not None:
            total += positions * module.out_channels

    def linear_hook(module: nn.Linear, _inp, out):
        nonlocal total
        total += out.shape[0] * module.in_features * module.out_features + (out.shape[0] * module.out_features if module.bias is not None else 0)

    _run_with_hooks(model, input_size, conv_hook, linear_hook, lambda x: _every_edge_forward(model.net, x, model.arch))
    return total


def _run_with_hooks(model: nn.Module, input_size: int, conv_hook, linear_hook, run) -> None:
    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            param = next(model.parameters())
            run(torch.zeros(1, 3, input_size, input_size, device=param.device, dtype=param.dtype))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
