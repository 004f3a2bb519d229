"""Shared machinery of single-path weight-sharing strategies: one supernet, SGD + cosine, path sampling.

`ws` is this class unchanged; variants (disturbance-immune projection, restricted sampling) override one
hook each, so that the config diff between them and `ws` is exactly their idea.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from harness.training import evaluation
from harness.training.optim import clip_gradients, sgd_with_cosine
from harness.strategies.base import Strategy


class SinglePathStrategy(Strategy):
    supports_forced_arch = True

    def __init__(self, ctx, options):
        super().__init__(ctx, options)
        self.supernet = ctx.space.build_supernet(ctx.shape).to(ctx.device)
        self.params = [p for p in self.supernet.parameters() if p.requires_grad]
        self.optimizer, self.scheduler = sgd_with_cosine(self.params, ctx.train, self.training_steps())

    def sample_arch(self, step: int) -> Any:
        return self.ctx.space.sample(self.ctx.rng(1, step))

    def before_optimizer_step(self, arch: Any, images: torch.Tensor) -> None:
        """Hook between backward and the optimiser step (gradients are in p.grad)."""

    def train_step(self, step: int, images: torch.Tensor, labels: torch.Tensor, arch: Any = None) -> torch.Tensor:
        arch = self.sample_arch(step) if arch is None else arch
        self.supernet.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.supernet(images, arch), labels)
        loss.backward()
        self.before_optimizer_step(arch, images)
        self.apply_update()
        self.scheduler.step()
        return loss.detach()  # stays on the device: the engine checks finiteness every few steps, not every step

    def apply_update(self) -> None:
        """Turns the gradients in p.grad into the weight update: clipping, then the shared SGD step."""
        clip_gradients(self.params, self.ctx.train.grad_clip)
        self.optimizer.step()

    def estimate(self, archs: Sequence[Any]) -> dict[str, np.ndarray]:
        self.supernet.eval()
        tally = evaluation.tally_supernet(self.supernet, archs, self.ctx.data.eval_batches(), self.ctx.progress,
                                          per_pass=self.ctx.compute.estimate_archs, flip=self.ctx.flip_views)
        return self.ctx.columns(tally)

    def averaged_modules(self) -> list[torch.nn.Module]:
        return [self.supernet]

    def state_dict(self) -> dict:
        return {
            "supernet": self.supernet.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.supernet.load_state_dict(state["supernet"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
