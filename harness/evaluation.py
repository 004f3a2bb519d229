"""Accuracy and loss of many architectures on fixed held-out batches (no gradients, fixed BN mode)."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

ESTIMATE_BY = ("accuracy", "loss")


def supernet_score(acc: np.ndarray, loss: np.ndarray, estimate_by: str) -> np.ndarray:
    """The score (higher = predicted better) a supernet gives architectures: accuracy, or minus the loss."""
    return acc if estimate_by == "accuracy" else -loss


@torch.no_grad()
def evaluate_archs(
    forward: Callable[[torch.Tensor, object], torch.Tensor],
    archs: Sequence[object],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    progress: bool = False,
    desc: str = "estimate",
) -> tuple[np.ndarray, np.ndarray]:
    """(accuracy in %, mean cross-entropy) of each architecture over all images of `batches`.

    The caller puts its modules in eval mode: with batch-statistics BN (no running stats) that still
    normalises by the current batch, so the fixed batches make estimates deterministic.
    """
    total = sum(len(y) for _, y in batches)
    acc = np.empty(len(archs))
    loss = np.empty(len(archs))
    for i, arch in enumerate(tqdm(archs, desc=desc, disable=not progress, leave=False, unit="arch")):
        correct = 0
        loss_sum = 0.0
        for x, y in batches:
            logits = forward(x, arch)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        acc[i] = 100.0 * correct / total
        loss[i] = loss_sum / total
    return acc, loss
