"""The optimiser and schedule every weight-training strategy shares, so budgets compare fairly."""
from __future__ import annotations

import math

import torch

from harness.config import TrainConfig


def sgd_with_cosine(params, cfg: TrainConfig, total_steps: int) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR]:
    """SGD (momentum, optional Nesterov, L2 weight decay) with a per-step cosine decay from lr to lr_min."""
    optimizer = torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay
    )
    floor = cfg.lr_min / cfg.lr
    horizon = max(1, total_steps)

    def factor(step: int) -> float:
        progress = min(step, horizon) / horizon
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def clip_gradients(params, max_norm: float) -> None:
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, max_norm)
