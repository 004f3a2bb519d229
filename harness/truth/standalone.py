"""Trains one architecture as its own network on a preset's task, through the ordinary training loop.

The network, optimiser (SGD + cosine, train.*), gradient clipping, batches and augmentation are those every
weight-training strategy uses, so the only difference from a supernet run is that no weight is shared.
Held-out accuracy and loss are measured on the estimation images the supernets are scored on.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from harness.strategies.base import Strategy, StrategyContext
from harness.training import engine
from harness.training.evaluation import evaluate_archs
from harness.training.optim import clip_gradients, sgd_with_cosine


def init_seed(seed: int, arch: Any) -> int:
    """Initial weights depend on (seed, architecture) only: not on which task or chunk trains it."""
    from harness.strategies.training_free.strategies import arch_key

    return int(np.random.SeedSequence([seed, 20, arch_key(arch)]).generate_state(1, dtype=np.uint64)[0] >> 1)


class StandaloneTraining(Strategy):
    """One fixed architecture, trained alone. Not a registered strategy: `truth build` drives it."""

    name = "standalone"

    def __init__(self, ctx: StrategyContext, arch: Any):
        super().__init__(ctx, None)
        self.arch = arch
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed(ctx.seed, arch))
            self.network = ctx.space.build_standalone(arch, ctx.shape).to(ctx.device)
        self.params = [p for p in self.network.parameters() if p.requires_grad]
        self.optimizer, self.scheduler = sgd_with_cosine(self.params, ctx.train, self.training_steps())

    def train_step(self, step: int, images: torch.Tensor, labels: torch.Tensor, arch: Any = None) -> torch.Tensor:
        self.network.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.network(images), labels)
        loss.backward()
        clip_gradients(self.params, self.ctx.train.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach()

    def estimate(self, archs: Sequence[Any]) -> dict[str, np.ndarray]:
        self.network.eval()
        with torch.no_grad():
            acc, loss = evaluate_archs(lambda x, _arch: self.network(x), list(archs), self.ctx.data.eval_batches())
        return {"score": acc, "accuracy": acc, "loss": loss}


def train_and_measure(ctx: StrategyContext, arch: Any) -> tuple[float, float]:
    """(held-out accuracy in %, mean held-out cross-entropy) of `arch` trained standalone for ctx.total_steps."""
    trainer = StandaloneTraining(ctx, arch)
    engine.train(trainer, ctx.data, ctx.seed, 0, lambda _step: None, max(1, ctx.total_steps), progress=False,
                 check_finite_every=ctx.train.check_finite_every, compute=ctx.compute)
    out = trainer.estimate([arch])
    return float(out["accuracy"][0]), float(out["loss"][0])
