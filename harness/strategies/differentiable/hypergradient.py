"""Implicit-function-theorem hypergradients (iDARTS, Zhang et al. 2021, arXiv 2106.10784), pure functions.

For an inner problem w*(a) = argmin_w L_train(w, a) and an outer loss L_val(w, a), the implicit function
theorem gives

    dL_val/da = d_a L_val - d2_{a,w} L_train . [d2_w L_train]^-1 . d_w L_val

The inverse Hessian is replaced by a truncated Neumann series gamma * sum_{k=0..K} (I - gamma H)^k, which
needs only Hessian-vector products (double backprop), never the Hessian itself. It converges to H^-1 when
0 < gamma * eigenvalue < 2 for every eigenvalue of H.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

Tensors = Sequence[torch.Tensor]


def _dot(a: Tensors, b: Tensors) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b))


def neumann_inverse_hvp(hvp: Callable[[Tensors], Tensors], v: Tensors, gamma: float, terms: int) -> list[torch.Tensor]:
    """gamma * sum_{k=0..terms} (I - gamma H)^k v, given u -> H u; approximates H^-1 v."""
    if terms < 0:
        raise ValueError(f"terms={terms} must be >= 0")
    power = [t.detach().clone() for t in v]  # (I - gamma H)^k v
    total = [t.clone() for t in power]
    for _ in range(terms):
        h = hvp(power)
        power = [p - gamma * hp.detach() for p, hp in zip(power, h)]
        total = [s + p for s, p in zip(total, power)]
    return [gamma * s for s in total]


def ift_hypergradient(
    train_loss: Callable[[], torch.Tensor],
    val_loss: Callable[[], torch.Tensor],
    weights: Tensors,
    hyper: Tensors,
    gamma: float,
    terms: int,
    weight_decay: float = 0.0,
) -> list[torch.Tensor]:
    """d L_val / d hyper at the current `weights`, treated as the inner optimum (IFT + Neumann series).

    `train_loss()` and `val_loss()` compute their losses from the current `weights` and `hyper` tensors
    (each call may use its own fixed mini-batch). `weight_decay` adds the L2 term the weight optimiser
    applies outside the loss, so the Hessian is that of the inner problem actually solved.
    """
    weights, hyper = list(weights), list(hyper)
    lv = val_loss()
    grads = torch.autograd.grad(lv, weights + hyper, allow_unused=True)
    v = [torch.zeros_like(w) if g is None else g for g, w in zip(grads[: len(weights)], weights)]
    direct = [torch.zeros_like(h) if g is None else g for g, h in zip(grads[len(weights) :], hyper)]

    lt = train_loss()
    grad_w = [
        torch.zeros_like(w) if g is None else g for g, w in zip(torch.autograd.grad(lt, weights, create_graph=True, allow_unused=True), weights)
    ]

    def hvp(u: Tensors) -> list[torch.Tensor]:
        h = torch.autograd.grad(_dot(grad_w, u), weights, retain_graph=True, allow_unused=True)
        return [(torch.zeros_like(w) if hu is None else hu) + weight_decay * ui for hu, ui, w in zip(h, u, weights)]

    p = neumann_inverse_hvp(hvp, v, gamma, terms)
    mixed = torch.autograd.grad(_dot(grad_w, p), hyper, allow_unused=True)
    return [d - (torch.zeros_like(d) if m is None else m) for d, m in zip(direct, mixed)]
