"""Accuracy and loss of many architectures on fixed held-out batches (no gradients, fixed BN mode).

Two equivalent paths: `evaluate_archs` runs one architecture at a time through any `forward(x, arch)`;
`evaluate_many` scores K architectures per forward through a supernet's `forward_many` (see
harness/spaces/nb201/network.py), with BN statistics per architecture, so both give the same numbers up
to float summation order. Counts and losses stay on the device; one transfer at the end.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
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


def supernet_columns(t: "Tally", estimate_by: str, flip: bool, all_views: bool) -> dict[str, np.ndarray]:
    """A supernet strategy's estimate columns from its tally: 'score' as eval.estimate_by and eval.flip ask,
    the held-out accuracy and loss, and with all_views (eval.all_estimators) the flip-averaged ones and both
    halves of the held-out batches (first vs second half: the noise study's two independent estimates)."""
    columns = {"score": supernet_score(t.accuracy(flip), t.mean_loss(flip), estimate_by),
               "holdout_acc": t.accuracy(), "holdout_loss": t.mean_loss()}
    if t.flip_correct is not None:
        columns.update(holdout_acc_flip=t.accuracy(True), holdout_loss_flip=t.mean_loss(True))
    if all_views:
        half = len(t.sizes) // 2
        if half:
            for name, part in (("half1", slice(0, half)), ("half2", slice(half, None))):
                columns[f"holdout_acc_{name}"] = t.accuracy(batches=part)
                columns[f"holdout_loss_{name}"] = t.mean_loss(batches=part)
    return columns


@dataclass
class Tally:
    """Per architecture and held-out batch: correct predictions and summed cross-entropy.

    `flip_*` hold the same for the flip-averaged prediction (the mean of the softmax over the images and their
    horizontal mirrors; its loss is -log of that mean at the label), present when the pass was asked for it.
    Kept per batch so an estimate can be recomputed on part of the images (the noise study's halves).
    """

    correct: np.ndarray  # (archs, batches) int
    loss: np.ndarray  # (archs, batches) float
    sizes: np.ndarray  # (batches,) images per batch
    flip_correct: np.ndarray | None = None
    flip_loss: np.ndarray | None = None

    @classmethod
    def empty(cls, archs: int, sizes: np.ndarray, flip: bool) -> "Tally":
        shape = (archs, len(sizes))
        return cls(np.zeros(shape, np.int64), np.zeros(shape), np.asarray(sizes),
                   np.zeros(shape, np.int64) if flip else None, np.zeros(shape) if flip else None)

    def put(self, rows: np.ndarray, part: "Tally") -> None:
        """Writes `part` (computed for the architectures at `rows`) into this tally."""
        self.correct[rows], self.loss[rows] = part.correct, part.loss
        if self.flip_correct is not None:
            self.flip_correct[rows], self.flip_loss[rows] = part.flip_correct, part.flip_loss

    def accuracy(self, flip: bool = False, batches: slice = slice(None)) -> np.ndarray:
        """Held-out accuracy in % over the chosen batches."""
        correct = self.flip_correct if flip else self.correct
        return 100.0 * correct[:, batches].sum(1) / self.sizes[batches].sum()

    def mean_loss(self, flip: bool = False, batches: slice = slice(None)) -> np.ndarray:
        """Mean held-out cross-entropy over the chosen batches."""
        loss = self.flip_loss if flip else self.loss
        return loss[:, batches].sum(1) / self.sizes[batches].sum()


class _Accumulator:
    """Device-side running sums for a tally: one transfer at the end."""

    def __init__(self, archs: int, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], flip: bool):
        device = batches[0][1].device
        self.sizes = np.array([len(y) for _, y in batches])
        shape = (archs, len(batches))
        self.correct = torch.zeros(shape, dtype=torch.int64, device=device)
        self.loss = torch.zeros(shape, dtype=torch.float64, device=device)
        self.flip = flip
        if flip:
            self.flip_correct = torch.zeros_like(self.correct)
            self.flip_loss = torch.zeros_like(self.loss)

    def add(self, rows, batch: int, logits: torch.Tensor, y: torch.Tensor, mirrored: torch.Tensor | None) -> None:
        """logits: (..., images, classes) for the architectures at `rows` (leading dim) or one architecture."""
        hits = (logits.argmax(-1) == y).sum(-1)
        if logits.dim() == 2:  # one architecture: the reduction of the runs made before tallies, bit for bit
            losses = F.cross_entropy(logits, y, reduction="sum")
        else:
            losses = F.cross_entropy(logits.flatten(0, 1), y.repeat(len(logits)), reduction="none").view(logits.shape[:-1]).sum(-1)
        # `rows` hold distinct positions: plain indexed updates, deterministic on every device
        self.correct[rows, batch] += hits
        self.loss[rows, batch] += losses.double()
        if mirrored is not None:
            logp = torch.logsumexp(torch.stack([logits.log_softmax(-1), mirrored.log_softmax(-1)]), 0) - math.log(2.0)
            self.flip_correct[rows, batch] += (logp.argmax(-1) == y).sum(-1)
            self.flip_loss[rows, batch] += (-logp.gather(-1, y.expand(logp.shape[:-1]).unsqueeze(-1))).squeeze(-1).sum(-1).double()

    def tally(self) -> Tally:
        flipped = (self.flip_correct.cpu().numpy(), self.flip_loss.cpu().numpy()) if self.flip else ()
        return Tally(self.correct.cpu().numpy(), self.loss.cpu().numpy(), self.sizes, *flipped)


def _mirrored(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


@torch.no_grad()
def tally_archs(
    forward: Callable[[torch.Tensor, object], torch.Tensor],
    archs: Sequence[object],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    progress: bool = False,
    desc: str = "estimate",
    flip: bool = False,
) -> Tally:
    """Tally of each architecture over all images of `batches`, one architecture at a time.

    The caller puts its modules in eval mode: with batch-statistics BN (no running stats) that still
    normalises by the current batch, so the fixed batches make estimates deterministic.
    """
    acc = _Accumulator(len(archs), batches, flip)
    for i, arch in enumerate(tqdm(archs, desc=desc, disable=not progress, leave=False, unit="arch")):
        for b, (x, y) in enumerate(batches):
            acc.add(i, b, forward(x, arch), y, forward(_mirrored(x), arch) if flip else None)
    return acc.tally()


def evaluate_archs(
    forward: Callable[[torch.Tensor, object], torch.Tensor],
    archs: Sequence[object],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    progress: bool = False,
    desc: str = "estimate",
) -> tuple[np.ndarray, np.ndarray]:
    """(accuracy in %, mean cross-entropy) of each architecture over all images of `batches`, one at a time."""
    if not archs:
        return np.empty(0), np.empty(0)
    t = tally_archs(forward, archs, batches, progress, desc)
    return t.accuracy(), t.mean_loss()


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
def tally_many(
    net: torch.nn.Module,
    archs: Sequence[object],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    progress: bool = False,
    desc: str = "estimate",
    per_pass: int = 0,
    flip: bool = False,
) -> Tally:
    """What tally_archs(net, ...) returns, computed K = archs_per_pass(...) architectures per forward."""
    k = archs_per_pass(net, batches, per_pass)
    acc = _Accumulator(len(archs), batches, flip)
    device = batches[0][1].device
    order = _sharing_order(archs)
    with tqdm(total=len(archs), desc=desc, disable=not progress, leave=False, unit="arch") as bar:
        for start in range(0, len(order), k):
            chunk = order[start : start + k]
            where = torch.as_tensor(chunk, device=device)
            group = [archs[i] for i in chunk]
            for b, (x, y) in enumerate(batches):
                logits, index = net.forward_many(x, group)
                mirrored = net.forward_many(_mirrored(x), group)[0][index] if flip else None
                acc.add(where, b, logits[index], y, mirrored)
            bar.update(len(chunk))
    return acc.tally()


def evaluate_many(
    net: torch.nn.Module,
    archs: Sequence[object],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    progress: bool = False,
    desc: str = "estimate",
    per_pass: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """What evaluate_archs(net, ...) returns, computed K = archs_per_pass(...) architectures per forward."""
    if not archs:
        return np.empty(0), np.empty(0)
    t = tally_many(net, archs, batches, progress, desc, per_pass)
    return t.accuracy(), t.mean_loss()


def tally_supernet(
    net: torch.nn.Module,
    archs: Sequence[object],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    progress: bool = False,
    desc: str = "estimate",
    per_pass: int = 0,
    flip: bool = False,
) -> Tally:
    """Batched when the network can route several architectures at once, else one at a time.

    per_pass = 1 (compute.estimate_archs=1) takes the one-at-a-time path: the numbers of runs made before
    batched estimation, bit for bit (batched ones agree to float rounding; an accuracy can differ by one
    image where two logits nearly tie).
    """
    if not archs:
        return Tally.empty(0, np.array([len(y) for _, y in batches]), flip)
    if hasattr(net, "forward_many") and per_pass != 1:
        return tally_many(net, archs, batches, progress, desc, per_pass, flip)
    return tally_archs(net, archs, batches, progress, desc, flip)


def estimate_supernet(
    net: torch.nn.Module,
    archs: Sequence[object],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    progress: bool = False,
    desc: str = "estimate",
    per_pass: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(accuracy in %, mean cross-entropy) through tally_supernet."""
    t = tally_supernet(net, archs, batches, progress, desc, per_pass)
    return t.accuracy(), t.mean_loss()
