"""`gm` (GM-NAS, Hu et al. 2022): split where the ops of an edge disagree on how to update shared weights.

For an edge, each candidate op is forced on the same random path elsewhere; the gradient of the loss with
respect to every supernet weight except that edge's own op weights (in all cells) is collected, and two ops
are as similar as the cosine of their gradients, averaged over `repeats` (batch, path) draws -- 100 in
the reference (WS-GM/nasbench201/train_search.py: `repeat = 100`, each a fresh training batch and a fresh
single path). Partition and edge choice: see
harness.strategies.split.partition (GM-NAS picks the edge of lowest cut, `edge_rule = "min_cross"`, the default here).
GM-NAS re-initialises sub-supernets after a split; here that is `child_init = "reinit"` (default: inherit,
so that equal-budget runs keep the warm-up's training).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from harness.registry import STRATEGIES
from harness.strategies.split.base import PartitionOptions, PartitionSplit


@dataclass(frozen=True)
class GMOptions(PartitionOptions):
    edge_rule: str = "min_cross"
    repeats: int = 100  # the reference's count


def shared_parameters(net, edge: int) -> list[torch.nn.Parameter]:
    """Every parameter except those of the ops on `edge` (the edge is the same decision in every cell)."""
    own = {id(p) for cell in net.cell_modules() for p in cell.edges[edge].parameters()}
    return [p for p in net.parameters() if id(p) not in own]


def _cosine_matrix(rows: torch.Tensor) -> np.ndarray:
    unit = rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)  # a zero row is dissimilar to everything
    return (unit @ unit.T).double().cpu().numpy()


def gradient_similarity(net, edge: int, ops: Sequence[int], batches, paths) -> np.ndarray:
    """Mean over (batch, path) of the cosine matrix of the ops' gradients on the shared weights."""
    params = shared_parameters(net, edge)
    net.train()
    total = np.zeros((len(ops), len(ops)))
    for (x, y), path in zip(batches, paths):
        grads = []
        for op in ops:
            arch = type(path)(tuple(op if e == edge else o for e, o in enumerate(path.ops)))
            net.zero_grad(set_to_none=True)
            F.cross_entropy(net(x, arch), y).backward()
            grads.append(torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]))
        total += _cosine_matrix(torch.stack(grads))
        del grads
    net.zero_grad(set_to_none=True)
    return total / len(batches)


@STRATEGIES.register("gm")
class GradientMatching(PartitionSplit):
    name = "gm"
    Options = GMOptions

    def op_similarity(self, net, edge, ops, batches, paths) -> np.ndarray:
        return gradient_similarity(net, edge, ops, batches, paths)
