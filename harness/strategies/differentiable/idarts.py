"""`idarts` (Zhang et al. 2021, arXiv 2106.10784): alpha's gradient from the implicit function theorem.

After every `inner_steps` (T) weight steps the weights are taken as the inner optimum and alpha gets

    d_alpha L_val - d2_{alpha,w} L_train . [d2_w L_train]^-1 . d_w L_val

with the inverse Hessian replaced by gamma * sum_{k=0..K} (I - gamma H)^k (K = `neumann_terms`; gamma =
the weights' current, cosine-decayed learning rate, as the reference implementation passes the
scheduler's lr, unless `neumann_gamma` fixes it), using
exact Hessian-vector products by double backprop on one half-0 and one half-1 mini-batch
(harness.strategies.differentiable.hypergradient). The weights are only ever changed by the real optimiser: no perturbation is left
in them and no copy of the optimiser is stepped.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.errors import HarnessError
from harness.strategies.differentiable.hypergradient import ift_hypergradient
from harness.registry import STRATEGIES
from harness.strategies.differentiable.base import DifferentiableOptions, DifferentiableStrategy


@dataclass(frozen=True)
class IdartsOptions(DifferentiableOptions):
    # The paper's defaults: K = 2 Neumann terms, T around 4-5 inner steps, gamma = the weights' learning rate.
    inner_steps: int = 5
    neumann_terms: int = 2
    neumann_gamma: float = 0.0  # 0 = the weights' current (cosine-decayed) learning rate at each architecture step

    def validate(self) -> None:
        super().validate()
        if self.inner_steps < 1:
            raise HarnessError(f"strategy.idarts.inner_steps={self.inner_steps!r} must be a positive integer")
        if self.neumann_terms < 0:
            raise HarnessError(f"strategy.idarts.neumann_terms={self.neumann_terms!r} must be >= 0")
        if self.neumann_gamma < 0:
            raise HarnessError(f"strategy.idarts.neumann_gamma={self.neumann_gamma!r} must be >= 0 (0 = the current weight learning rate)")


@STRATEGIES.register("idarts")
class Idarts(DifferentiableStrategy):
    name = "idarts"
    Options = IdartsOptions
    mechanism = (
        "iDARTS: implicit-function-theorem hypergradient, inverse Hessian by a truncated Neumann series with exact "
        "Hessian-vector products; one architecture step after every inner_steps weight steps"
    )
    arch_step_first = False

    def arch_step_due(self, step: int) -> bool:
        return (step + 1) % self.options.inner_steps == 0

    def neumann_gamma(self) -> float:
        return self.options.neumann_gamma or self.current_lr()

    def alpha_gradient(self, step: int, train: tuple, val: tuple) -> torch.Tensor:
        gamma = self.neumann_gamma()
        (grad,) = ift_hypergradient(
            train_loss=lambda: self.loss_at(*train, F.softmax(self.alpha, dim=-1)),
            val_loss=lambda: self.loss_at(*val, F.softmax(self.alpha, dim=-1)),
            weights=self.params,
            hyper=[self.alpha],
            gamma=gamma,
            terms=self.options.neumann_terms,
            weight_decay=self.ctx.train.weight_decay,
        )
        return grad

    def extra_record(self, step: int) -> dict:
        return {"neumann_gamma": self.neumann_gamma()}

    def extra_summary(self) -> dict:
        return {"neumann_gamma": "fixed" if self.options.neumann_gamma else "current weight lr (cosine)"}
