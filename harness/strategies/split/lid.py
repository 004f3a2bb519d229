"""Local intrinsic dimension (LID): maximum-likelihood estimate from k nearest neighbours within a batch.

For a point with neighbour distances r_1 <= ... <= r_k (itself excluded), the MLE of Levina & Bickel in
the form NAS-LID uses (Amsaleg et al. 2015) is

    LID = -( (1/k) * sum_i log(r_i / r_k) )^-1 .

The batch's LID is the mean over its points. Pure torch, no gradients.
"""
from __future__ import annotations

import torch

from harness.errors import HarnessError


@torch.no_grad()
def lid_mle(points: torch.Tensor, k: int = 20) -> torch.Tensor:
    """Per-point LID of the rows of `points` (n, ...) estimated against the other rows of the same batch."""
    flat = points.reshape(len(points), -1).to(torch.float64)
    n = len(flat)
    if k < 1 or k > n - 1:
        raise HarnessError(f"LID k={k} needs 1 <= k <= batch size - 1 = {n - 1}")
    # |a|^2 + |b|^2 - 2ab in float64 (float32 would lose small distances to cancellation); unlike cdist it
    # allocates nothing of the batch's full width beyond the float64 copy.
    sq = (flat * flat).sum(dim=1)
    dist = (sq[:, None] + sq[None, :] - 2.0 * (flat @ flat.T)).clamp_min_(0).sqrt_()
    dist.fill_diagonal_(float("inf"))
    nearest = dist.topk(k, dim=1, largest=False).values  # ascending
    r_k = nearest[:, -1:]
    # Coinciding neighbours (a zero feature map, duplicated images) have no measurable dimension: LID 0.
    tiny = torch.finfo(torch.float64).tiny
    log_ratio = torch.log(nearest.clamp_min(tiny) / r_k.clamp_min(tiny))
    mean_log = log_ratio.mean(dim=1)
    lid = torch.where(mean_log < 0, -1.0 / mean_log, torch.zeros_like(mean_log))
    return lid.to(torch.float32)


def batch_lid(points: torch.Tensor, k: int = 20) -> float:
    return float(lid_mle(points, k).mean())
