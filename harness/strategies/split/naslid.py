"""`naslid` (NAS-LID, He et al. 2022, arXiv 2211.12759): split where ops give the features different geometry.

For an edge, each candidate op is forced on the same random path elsewhere; the op's profile is the vector
of local intrinsic dimensions (harness.strategies.split.lid, MLE with k nearest neighbours within the batch) of
the layer outputs, computed without gradients: by default (`layers = "cells+reductions"`, as NAS-LID) every
search cell and the two residual reduction blocks -- 3N + 2 features, 17 at N=5 -- but not the stem. Two ops
are as similar as the cosine of their LID vectors, averaged over `repeats` batches (128 images by default).
Partition and edge choice: harness.strategies.split.partition; the default `edge_rule = "max_intra"` is the
paper's "highest partition score". `max_cross` (the largest cross-group similarity, what one public
implementation appears to take) picked the same edge as `max_intra` in every recorded decision: both choose
the edge whose ops are most alike, the opposite of GM-NAS's min-cut.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from harness.errors import HarnessError, one_of
from harness.strategies.split.lid import batch_lid
from harness.registry import STRATEGIES
from harness.spaces.nb201.network import Cell
from harness.strategies.split.base import PartitionOptions, PartitionSplit

LAYER_CHOICES = ("cells+reductions", "cells", "all")


@dataclass(frozen=True)
class NASLIDOptions(PartitionOptions):
    k: int = 20
    batch_size: int = 128
    # "cells+reductions": cells and residual reduction blocks (NAS-LID); "cells": cells only; "all": also the stem.
    layers: str = "cells+reductions"

    def validate(self) -> None:
        super().validate()
        if self.layers not in LAYER_CHOICES:
            raise one_of("naslid layers", self.layers, LAYER_CHOICES)
        if self.k < 1 or self.batch_size <= self.k:
            raise HarnessError(f"naslid k={self.k} and batch_size={self.batch_size} need 1 <= k < batch_size")


def feature_layers(net, layers: str) -> list[int]:
    """Positions in NB201Network.features() output (0 = stem, i + 1 = net.layers[i]) that form the profile."""
    if layers not in LAYER_CHOICES:
        raise one_of("naslid layers", layers, LAYER_CHOICES)
    if layers == "all":
        return list(range(len(net.layers) + 1))
    if layers == "cells+reductions":
        return list(range(1, len(net.layers) + 1))
    return [i + 1 for i, layer in enumerate(net.layers) if isinstance(layer, Cell)]


@torch.no_grad()
def lid_profiles(net, edge: int, ops: Sequence[int], x: torch.Tensor, path, k: int, layers: str) -> torch.Tensor:
    """(len(ops), layers) LID of each layer's output for each op forced on `edge` of `path`."""
    keep = feature_layers(net, layers)
    rows = []
    for op in ops:
        arch = type(path)(tuple(op if e == edge else o for e, o in enumerate(path.ops)))
        feats = net.features(x, arch)
        rows.append(torch.tensor([batch_lid(feats[i], k) for i in keep], device=x.device))
        del feats
    return torch.stack(rows)


def lid_similarity(net, edge: int, ops: Sequence[int], batches, paths, k: int = 20, layers: str = "cells+reductions") -> np.ndarray:
    """Mean over (batch, path) of the cosine matrix of the ops' layer-wise LID vectors."""
    net.eval()  # a probe, like estimation: no gradients, BN as at estimation time
    total = np.zeros((len(ops), len(ops)))
    for (x, _y), path in zip(batches, paths):
        profile = lid_profiles(net, edge, ops, x, path, k, layers).double()
        unit = profile / profile.norm(dim=1, keepdim=True).clamp_min(1e-12)
        total += (unit @ unit.T).numpy()
    return total / len(batches)


@STRATEGIES.register("naslid")
class NASLID(PartitionSplit):
    name = "naslid"
    Options = NASLIDOptions

    @property
    def criterion_batch_size(self) -> int:
        return self.options.batch_size

    def op_similarity(self, net, edge, ops, batches, paths) -> np.ndarray:
        return lid_similarity(net, edge, ops, batches, paths, self.options.k, self.options.layers)

    def criterion_record(self) -> dict:
        net = self.nodes[self.leaves[0]].supernet  # every leaf holds a whole supernet of the same shape
        return {**super().criterion_record(), "k": self.options.k, "layers": self.options.layers,
                "lid_features": len(feature_layers(net, self.options.layers))}
