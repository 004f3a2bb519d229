"""The shipped optimiser's step (torch.optim.SGD, dampening and Nesterov as configured), re-done per tensor.

`dinas` projects the *final* update direction of a shared weight -- weight decay and momentum included --
so it needs that direction before it is applied. `sgd_direction` computes it with exactly the tensor
operations of torch's single-tensor SGD, so that an identity projection reproduces `ws` bit for bit.
"""
from __future__ import annotations

import torch


def sgd_direction(param: torch.Tensor, grad: torch.Tensor, group: dict, state: dict) -> torch.Tensor:
    """u such that SGD would do param -= lr * u; advances state["momentum_buffer"] as SGD does.

    The buffer keeps the raw (unprojected) d = grad + weight_decay * param, as in `ws`: projecting the buffer
    itself would make it forget earlier steps' components that a later projector no longer removes.
    The returned tensor may be the buffer itself (momentum without Nesterov): callers must not modify it.
    """
    weight_decay, momentum = group["weight_decay"], group["momentum"]
    d = grad.add(param, alpha=weight_decay) if weight_decay != 0 else grad
    if momentum == 0:
        return d
    buf = state.get("momentum_buffer")
    if buf is None:
        buf = d.detach().clone()
        state["momentum_buffer"] = buf
    else:
        buf.mul_(momentum).add_(d, alpha=1 - group["dampening"])
    return d.add(buf, alpha=momentum) if group["nesterov"] else buf


def clip_coefficient(grads: list[torch.Tensor], max_norm: float) -> torch.Tensor | float:
    """The factor clip_grad_norm_ would multiply `grads` by (a device tensor; 1.0 when clipping is off)."""
    if max_norm <= 0 or not grads:
        return 1.0
    total = torch.nn.utils.get_total_norm(grads)
    return torch.clamp(max_norm / (total + 1e-6), max=1.0)
