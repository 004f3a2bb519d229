"""Accuracy and loss of many architectures on fixed held-out batches (no gradients, fixed BN mode).

Two equivalent paths: `evaluate_archs` runs one architecture at a time through any `forward(x, arch)`;
`evaluate_many` scores K architectures per forward through a supernet's `forward_many` (see
harness/spaces/nb201/network.py), with BN statistics per architecture, so both give the same numbers up
to float summation order. Counts and losses stay on the device; one transfer at the end.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from harness.errors import HarnessError

ESTIMATE_BY = ("accuracy", "loss")
# Bytes one architecture needs in a batched pass, per image and per value of the widest activation
# (channels x resolution^2 of the first stage): the four node values of a cell, the distinct op outputs
# feeding them, BN temporaries. Measured peak on CPU mini: ~14; the margin covers allocator slack.
BYTES_PER_ACTIVATION = 4 * 24
MAX_ARCHS_PER_PASS = 256
# On a CPU larger passes only leave the caches (mini, one thread: K=8 and 16 equal, K=24 slower).
MAX_ARCHS_PER_PASS_CPU = 8


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
    """(accuracy in %, mean cross-entropy) of each architecture over all images of `batches`, one at a time.

    The caller puts its modules in eval mode: with batch-statistics BN (no running stats) that still
    normalises by the current batch, so the fixed batches make estimates deterministic.
    """
    total = sum(len(y) for _, y in batches)
    if not archs:
        return np.empty(0), np.empty(0)
    device = batches[0][1].device
    correct = torch.zeros(len(archs), dtype=torch.int64, device=device)
    loss_sum = torch.zeros(len(archs), dtype=torch.float64, device=device)
    for i, arch in enumerate(tqdm(archs, desc=desc, disable=not progress, leave=False, unit="arch")):
        for x, y in batches:
            logits = forward(x, arch)
            correct[i] += (logits.argmax(1) == y).sum()
            loss_sum[i] += F.cross_entropy(logits, y, reduction="sum").double()
    return 100.0 * correct.cpu().numpy() / total, loss_sum.cpu().numpy() / total


def archs_per_pass(net: torch.nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], forced: int = 0) -> int:
    """How many architectures one batched forward takes: `forced` if positive, else what fits in memory.

    Rule: K = budget / (rows x channels x H x W x BYTES_PER_ACTIVATION), clipped to [1, 256], where rows is
    the largest eval batch and the budget is half the free GPU memory on CUDA, a quarter of the available
    RAM on CPU (others share the machine); at most 8 on a CPU (MAX_ARCHS_PER_PASS_CPU).
    """
    if forced < 0:
        raise HarnessError(f"compute.estimate_archs={forced!r} must be >= 0 (0 = chosen from free memory)")
    if forced:
        return forced
    x = batches[0][0]
    rows = max(len(y) for _, y in batches)
    per_arch = rows * net.shape.channels * x.shape[-1] * x.shape[-2] * BYTES_PER_ACTIVATION
    cap = MAX_ARCHS_PER_PASS if x.device.type == "cuda" else MAX_ARCHS_PER_PASS_CPU
    return max(1, min(cap, int(free_memory(x.device) // per_arch)))


def free_memory(device: torch.device) -> float:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free / 2
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        available = 2 * 1024**3
    return available / 4


def _sharing_order(archs: Sequence[object]) -> list[int]:
    # Neighbours that agree on the ops fed by a cell's input share those op outputs in one pass.
    def key(i: int):
        ops = archs[i].ops
        return (ops[0], ops[1], ops[3], ops[2], ops[4], ops[5])

    return sorted(range(len(archs)), key=key)


@torch.no_grad()
def evaluate_many(
    net: torch.nn.Module,
    archs: Sequence[object],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    progress: bool = False,
    desc: str = "estimate",
    per_pass: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """What evaluate_archs(net, ...) returns, computed K = archs_per_pass(...) architectures per forward."""
    total = sum(len(y) for _, y in batches)
    if not archs:
        return np.empty(0), np.empty(0)
    k = archs_per_pass(net, batches, per_pass)
    device = batches[0][1].device
    correct = torch.zeros(len(archs), dtype=torch.int64, device=device)
    loss_sum = torch.zeros(len(archs), dtype=torch.float64, device=device)
    order = _sharing_order(archs)
    with tqdm(total=len(archs), desc=desc, disable=not progress, leave=False, unit="arch") as bar:
        for start in range(0, len(order), k):
            chunk = order[start : start + k]
            where = torch.as_tensor(chunk, device=device)
            for x, y in batches:
                logits, index = net.forward_many(x, [archs[i] for i in chunk])
                groups = logits.shape[0]
                hits = (logits.argmax(-1) == y).sum(1)
                losses = F.cross_entropy(logits.flatten(0, 1), y.repeat(groups), reduction="none").view(groups, -1).sum(1)
                # `where` holds distinct positions: plain indexed updates, deterministic on every device
                correct[where] += hits[index]
                loss_sum[where] += losses[index].double()
            bar.update(len(chunk))
    return 100.0 * correct.cpu().numpy() / total, loss_sum.cpu().numpy() / total


def estimate_supernet(
    net: torch.nn.Module,
    archs: Sequence[object],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    progress: bool = False,
    desc: str = "estimate",
    per_pass: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Batched when the network can route several architectures at once, else one at a time.

    per_pass = 1 (compute.estimate_archs=1) takes the one-at-a-time path: the numbers of runs made before
    batched estimation, bit for bit (batched ones agree to float rounding; an accuracy can differ by one
    image where two logits nearly tie).
    """
    if hasattr(net, "forward_many") and per_pass != 1:
        return evaluate_many(net, archs, batches, progress, desc, per_pass)
    return evaluate_archs(net, archs, batches, progress, desc)
