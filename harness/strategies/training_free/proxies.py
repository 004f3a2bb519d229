"""Training-free (zero-cost) proxies: one number per freshly initialised network, higher = predicted better.

Pure functions of a module and its inputs, so each can be checked on a tiny network by hand. Gradient-based
proxies (snip, gradnorm, synflow) sum over the weights of Conv2d and Linear layers, as in Abdelfattah et al.
2021 ("Zero-Cost Proxies for Lightweight NAS"); BN parameters and biases are not scored.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from harness.spaces.nb201.network import count_flops, count_parameters

__all__ = ["param_count", "flop_count", "synflow", "naswot", "snip", "gradnorm", "scored_weights"]


def scored_weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def param_count(model: nn.Module) -> float:
    return float(count_parameters(model))


def flop_count(model: nn.Module, resolution: int) -> float:
    """Multiply-accumulates for one image at `resolution` x `resolution` (the MACs NB201 calls FLOPs)."""
    return float(count_flops(model, input_size=resolution))


def _without_batchnorm(model: nn.Module) -> nn.Module:
    """A copy with every BN layer replaced by the identity.

    SynFlow (Tanaka et al. 2020) scores the linearised network; the zero-cost reference implementation builds
    NB201 networks without BN for it. A freshly initialised BN in eval mode is the identity up to eps anyway,
    while batch statistics of a constant input would rescale every layer by a data-free artefact.
    """
    clone = copy.deepcopy(model)
    for parent in list(clone.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _BatchNorm):
                setattr(parent, name, nn.Identity())
    return clone


def synflow(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """sum |theta * dR/dtheta| with R = sum(f_|theta|(1)), in double precision on a BN-free copy.

    `input_shape` is one image's shape (C, H, W); the input is a single all-ones image. The model itself is
    left untouched (the absolute values are taken on a copy).
    """
    net = _without_batchnorm(model).double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    net.eval()
    param = next(net.parameters())
    out = net(torch.ones((1, *input_shape), dtype=torch.float64, device=param.device))
    out.sum().backward()
    total = 0.0
    for w in scored_weights(net):
        if w.grad is not None:
            total += float((w.detach() * w.grad).abs().sum())
    return total


def naswot(model: nn.Module, images: torch.Tensor) -> float:
    """log|det K| of the ReLU activation-pattern kernel (Mellor et al. 2021, "NAS without training").

    K[i, j] = number of ReLU units on which images i and j agree (both active or both inactive), summed
    over every nn.ReLU of the model; a network that separates the images well has a large determinant.
    """
    n = images.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64, device=images.device)

    def count(_module, inputs, _output):
        codes = (inputs[0].detach().reshape(n, -1) > 0).double()
        kernel.add_(codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T)

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for h in handles:
            h.remove()
    _sign, logabsdet = torch.linalg.slogdet(kernel)
    return float(logabsdet)


def _loss_gradients(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(images), labels).backward()
    pairs = [(w, w.grad) for w in scored_weights(model)]
    return pairs


def snip(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """sum |theta * dL/dtheta| of the cross-entropy on one batch (Lee et al. 2019's connection sensitivity)."""
    total = 0.0
    for w, g in _loss_gradients(model, images, labels):
        if g is not None:
            total += float((w.detach() * g).abs().sum())
    model.zero_grad(set_to_none=True)
    return total


def gradnorm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Sum over layers of the Euclidean norm of the cross-entropy gradient of the layer's weight."""
    total = 0.0
    for _w, g in _loss_gradients(model, images, labels):
        if g is not None:
            total += float(g.norm())
    model.zero_grad(set_to_none=True)
    return total


def finite_or_last(scores: np.ndarray) -> tuple[np.ndarray, int]:
    """Replaces undefined scores (nan, +-inf: e.g. log det of a singular kernel) by a value below every
    finite one, so such networks rank last instead of poisoning the metrics; returns how many were replaced."""
    scores = np.asarray(scores, dtype=np.float64).copy()
    bad = ~np.isfinite(scores)
    if bad.any():
        finite = scores[~bad]
        floor = (finite.min() - 1.0) if finite.size else 0.0
        scores[bad] = floor if math.isfinite(floor) else -1e300
    return scores, int(bad.sum())
