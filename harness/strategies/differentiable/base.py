"""Differentiable search on the weight-sharing supernet: DARTS (1st / 2nd order) and GDAS; iDARTS in idarts.py.

One supernet (the same modules the single-path strategies train, run through `forward_mixed`), one
architecture tensor alpha (edges x ops), and a bi-level loop: weights by SGD + cosine on half 0 of the
training images, alpha by Adam on half 1 (DataConfig.split_seed fixes the halves, recorded in summary()).

The engine hands every step a batch drawn from *all* training images; these strategies ignore it and
draw their own half batches, since using it for weight steps would train the weights on the images the
architecture is selected on, which is exactly what the bi-level split exists to prevent.

Budget: `training_steps()` steps, each one weight step on a half-0 batch (the same for all four
strategies and for `ws`); the number of architecture steps is recorded (one per step, or one per
`inner_steps` for iDARTS).

Outputs: every epoch (ctx.data.steps_per_epoch steps) the derived architecture (argmax of alpha per edge),
its skip / none fraction and its NB201 ground truth on all three columns go into `history`. `estimate`
returns both the alpha score (sum over edges of log-softmax(alpha) of the chosen op) and the supernet's
single-path holdout accuracy; `rank_by` picks which one is the `score` the run driver ranks by.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from harness.errors import HarnessError, one_of
from harness.training import evaluation
from harness.scoring.groundtruth import COLUMNS, load_ground_truth
from harness.training.optim import clip_gradients, sgd_with_cosine
from harness.registry import STRATEGIES
from harness.spaces.nb201.arch import NONE, OPS, SKIP, Arch
from harness.strategies.base import Strategy

RANK_BY = ("alpha", "supernet")
WEIGHT_HALF, ARCH_HALF = 0, 1


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise HarnessError(f"strategy option {name}={value!r} must be > 0")


@dataclass(frozen=True)
class DifferentiableOptions:
    # DARTS' architecture optimiser (Liu et al. 2019): Adam, lr 3e-4, betas (0.5, 0.999), weight decay 1e-3.
    arch_lr: float = 3e-4
    arch_beta1: float = 0.5
    arch_beta2: float = 0.999
    arch_weight_decay: float = 1e-3
    alpha_init_std: float = 1e-3
    rank_by: str = "alpha"  # which estimate is the ranked `score`: "alpha" (log-softmax sum) or "supernet" (holdout acc)
    # NB201's convention derives the argmax over all ops, `none` included; false excludes it.
    derive_with_none: bool = True

    def validate(self) -> None:
        _positive(arch_lr=self.arch_lr)
        if not (0 <= self.arch_beta1 < 1 and 0 <= self.arch_beta2 < 1):
            raise HarnessError(f"strategy options arch_beta1={self.arch_beta1!r}, arch_beta2={self.arch_beta2!r}: both must be in [0, 1)")
        if self.arch_weight_decay < 0 or self.alpha_init_std < 0:
            raise HarnessError(
                f"strategy options arch_weight_decay={self.arch_weight_decay!r}, alpha_init_std={self.alpha_init_std!r}: both must be >= 0"
            )
        if self.rank_by not in RANK_BY:
            raise one_of("rank_by", self.rank_by, RANK_BY)


class DifferentiableStrategy(Strategy):
    """Shared bi-level machinery; subclasses choose the op weights and how alpha's gradient is computed."""

    Options = DifferentiableOptions
    mechanism = ""
    # DARTS steps alpha before the weights in each iteration; iDARTS after its inner weight steps.
    arch_step_first = True

    def __init__(self, ctx, options):
        super().__init__(ctx, options)
        self.supernet = ctx.space.build_supernet(ctx.shape).to(ctx.device)
        if not hasattr(self.supernet, "forward_mixed"):
            raise HarnessError(f"space {ctx.space.name!r} has no mixed-op supernet; accepted spaces: nb201")
        self.params = [p for p in self.supernet.parameters() if p.requires_grad]
        self.optimizer, self.scheduler = sgd_with_cosine(self.params, ctx.train, self.training_steps())
        shape = (len(ctx.space.decisions()), len(OPS))
        init = options.alpha_init_std * ctx.rng(5).standard_normal(shape)
        self.alpha = torch.nn.Parameter(torch.tensor(init, dtype=torch.float32, device=ctx.device))
        self.arch_optimizer = torch.optim.Adam(
            [self.alpha], lr=options.arch_lr, betas=(options.arch_beta1, options.arch_beta2), weight_decay=options.arch_weight_decay
        )
        self.history: list[dict] = []
        self.arch_steps = 0
        self.weight_steps = 0
        self._gt = None

    # ---- op weights and losses -------------------------------------------------------------------
    def mixing(self, step: int, purpose: int) -> tuple[torch.Tensor, tuple[int, ...] | None]:
        """(edges x ops) weights of the mixed forward, differentiable in alpha, and the sampled op per edge
        (None: every op runs, as in DARTS). purpose: 0 weight step, 1 arch step."""
        return F.softmax(self.alpha, dim=-1), None

    def loss_at(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, sampled=None) -> torch.Tensor:
        logits = self.supernet.forward_mixed(x, weights, sampled, self.unsampled_as_scalars and sampled is not None)
        return F.cross_entropy(logits, y)

    # AutoDL's forward_gdas adds the unsampled one-hot entries as scalars; only a sampling strategy sets it.
    unsampled_as_scalars = False

    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # ---- the two updates -------------------------------------------------------------------------
    def alpha_gradient(self, step: int, train: tuple, val: tuple) -> torch.Tensor:
        """First order (DARTS-V1, GDAS): d L_val / d alpha at the current weights."""
        loss = self.loss_at(*val, *self.mixing(step, 1))
        (grad,) = torch.autograd.grad(loss, [self.alpha], allow_unused=True)
        # A forward_gdas_v1 sample whose cell output is zero (every path to the output is `none`) does not
        # depend on alpha.
        return torch.zeros_like(self.alpha) if grad is None else grad

    def architecture_step(self, step: int, train: tuple, val: tuple) -> None:
        self.arch_optimizer.zero_grad(set_to_none=True)
        self.alpha.grad = self.alpha_gradient(step, train, val).detach()
        self.arch_optimizer.step()
        self.arch_steps += 1

    def weight_step(self, step: int, train: tuple) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        weights, sampled = self.mixing(step, 0)
        loss = self.loss_at(*train, weights.detach(), sampled)
        loss.backward()
        clip_gradients(self.params, self.ctx.train.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.weight_steps += 1
        return loss.detach()  # stays on the device: the engine checks finiteness every few steps, not every step

    def arch_step_due(self, step: int) -> bool:
        return True

    def train_step(self, step: int, images: torch.Tensor, labels: torch.Tensor, arch: Any = None) -> float:
        if arch is not None:
            raise HarnessError(f"strategy {self.name!r} trains a mixture of all ops and cannot train a forced architecture {arch}")
        if step == 0 and not self.history:
            self._record(0)
        self.supernet.train()
        data, seed = self.ctx.data, self.ctx.seed
        train = data.half_batch(seed, step, WEIGHT_HALF)
        val = data.half_batch(seed, step, ARCH_HALF)
        if self.arch_step_first and self.arch_step_due(step):
            self.architecture_step(step, train, val)
        loss = self.weight_step(step, train)
        if not self.arch_step_first and self.arch_step_due(step):
            self.architecture_step(step, train, val)
        done = step + 1
        if done % data.steps_per_epoch == 0 or done == self.training_steps():
            self._record(done)
        return loss

    # ---- derived architecture and its history ----------------------------------------------------
    def derived_arch(self) -> Arch:
        logits = self.alpha.detach().clone()
        if not self.options.derive_with_none:
            logits[:, NONE] = -math.inf
        return Arch(tuple(int(op) for op in logits.argmax(dim=-1).tolist()))

    def ground_truth(self):
        if self._gt is None:
            self._gt = load_ground_truth(root=self.ctx.data.root)
        return self._gt

    def extra_record(self, step: int) -> dict:
        return {}

    def extra_summary(self) -> dict:
        return {}

    def _record(self, step: int) -> None:
        arch = self.derived_arch()
        gt = self.ground_truth()
        probs = F.softmax(self.alpha.detach(), dim=-1).mean(dim=0).tolist()
        entry = {
            "epoch": step / self.ctx.data.steps_per_epoch,
            "step": step,
            "arch": str(arch),
            "index": gt.index_of(arch),
            **{column: float(gt.values([arch], column)[0]) for column in COLUMNS},
            "skip_fraction": sum(op == SKIP for op in arch.ops) / len(arch.ops),
            "none_fraction": sum(op == NONE for op in arch.ops) / len(arch.ops),
            "mean_op_probability": dict(zip(OPS, probs)),
            "arch_steps": self.arch_steps,
            **self.extra_record(step),
        }
        self.history.append(entry)

    # ---- ranking ---------------------------------------------------------------------------------
    def alpha_scores(self, archs: Sequence[Arch]) -> np.ndarray:
        logp = F.log_softmax(self.alpha.detach(), dim=-1).cpu().numpy().astype(np.float64)
        edges = np.arange(logp.shape[0])
        return np.array([logp[edges, list(a.ops)].sum() for a in archs])

    def estimate(self, archs: Sequence[Arch]) -> dict[str, np.ndarray]:
        alpha_score = self.alpha_scores(archs)
        self.supernet.eval()
        tally = evaluation.tally_supernet(self.supernet, archs, self.ctx.data.eval_batches(), self.ctx.progress,
                                          per_pass=self.ctx.compute.estimate_archs, flip=self.ctx.flip_views)
        columns = {f"supernet_{k[len('holdout_'):]}" if k.startswith("holdout_") else k: v for k, v in self.ctx.columns(tally).items()}
        if self.options.rank_by == "alpha":
            columns["score"] = alpha_score
        return {**columns, "alpha_score": alpha_score}

    def averaged_modules(self) -> list[torch.nn.Module]:
        return [self.supernet]

    # ---- record and checkpoint -------------------------------------------------------------------
    def summary(self) -> dict:
        final = self.history[-1] if self.history else None
        return {
            "mechanism": self.mechanism,
            "options": asdict(self.options),
            "rank_by": self.options.rank_by,
            "derive_with_none": self.options.derive_with_none,
            "data_halves": {"weights": WEIGHT_HALF, "architecture": ARCH_HALF, **self.ctx.data.describe_halves()},
            "weight_steps": self.weight_steps,
            "arch_steps": self.arch_steps,
            "derived_arch": final["arch"] if final else None,
            "derived_truth": {column: final[column] for column in COLUMNS} if final else None,
            "alpha": self.alpha.detach().cpu().tolist(),
            "ops": list(OPS),
            "history": self.history,
            **self.extra_summary(),
        }

    def state_dict(self) -> dict:
        return {
            "supernet": self.supernet.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "alpha": self.alpha.detach().clone(),
            "arch_optimizer": self.arch_optimizer.state_dict(),
            "history": list(self.history),
            "arch_steps": self.arch_steps,
            "weight_steps": self.weight_steps,
        }

    def load_state_dict(self, state: dict) -> None:
        self.supernet.load_state_dict(state["supernet"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        with torch.no_grad():
            self.alpha.copy_(state["alpha"])
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
        self.history = list(state["history"])
        self.arch_steps = state["arch_steps"]
        self.weight_steps = state["weight_steps"]


@STRATEGIES.register("darts")
class Darts(DifferentiableStrategy):
    name = "darts"
    mechanism = "DARTS first order: softmax mixed ops, alpha by d L_val / d alpha at the current weights"


@dataclass(frozen=True)
class Darts2Options(DifferentiableOptions):
    unroll_lr: float = 0.0  # xi of the virtual step; 0 = the weights' current learning rate (as in DARTS)
    fd_scale: float = 0.01  # finite-difference epsilon = fd_scale / ||d L_val / d w'||

    def validate(self) -> None:
        super().validate()
        if self.unroll_lr < 0:
            raise HarnessError(f"strategy.darts2.unroll_lr={self.unroll_lr!r} must be >= 0 (0 = current weight lr)")
        _positive(fd_scale=self.fd_scale)


@STRATEGIES.register("darts2")
class Darts2(DifferentiableStrategy):
    """DARTS second order: alpha's gradient through one virtual SGD step, Hessian term by finite differences."""

    name = "darts2"
    Options = Darts2Options
    mechanism = (
        "DARTS second order: d L_val(w - xi dL_train/dw) / d alpha, the Hessian-vector product by central "
        "finite differences at w +- eps dL_val/dw'"
    )

    def alpha_gradient(self, step: int, train: tuple, val: tuple) -> torch.Tensor:
        xi = self.options.unroll_lr or self.current_lr()
        backup = [p.detach().clone() for p in self.params]
        try:
            self._virtual_step(train, xi)
            loss = self.loss_at(*val, F.softmax(self.alpha, dim=-1))
            *grad_w, grad_alpha = torch.autograd.grad(loss, [*self.params, self.alpha])
            eps = self.options.fd_scale / float(torch.sqrt(sum((g * g).sum() for g in grad_w)).clamp_min(1e-12))
            grad_plus = self._train_alpha_grad_at(train, backup, grad_w, eps)
            grad_minus = self._train_alpha_grad_at(train, backup, grad_w, -eps)
        finally:
            self._restore(backup)
        return grad_alpha - xi * (grad_plus - grad_minus) / (2 * eps)

    @torch.no_grad()
    def _restore(self, backup: list[torch.Tensor]) -> None:
        for p, saved in zip(self.params, backup):
            p.copy_(saved)

    def _virtual_step(self, train: tuple, xi: float) -> None:
        """w' = w - xi (momentum buffer + grad + weight decay), DARTS' unrolled step, without touching the optimiser."""
        loss = self.loss_at(*train, F.softmax(self.alpha, dim=-1).detach())
        grads = torch.autograd.grad(loss, self.params)
        cfg = self.ctx.train
        with torch.no_grad():
            for p, g in zip(self.params, grads):
                buf = self.optimizer.state.get(p, {}).get("momentum_buffer")
                direction = g + cfg.weight_decay * p
                if buf is not None:
                    direction = direction + cfg.momentum * buf
                p.sub_(xi * direction)

    def _train_alpha_grad_at(self, train: tuple, backup, direction, eps: float) -> torch.Tensor:
        with torch.no_grad():
            for p, saved, d in zip(self.params, backup, direction):
                p.copy_(saved).add_(d, alpha=eps)
        loss = self.loss_at(*train, F.softmax(self.alpha, dim=-1))
        return torch.autograd.grad(loss, [self.alpha])[0]


GDAS_FORWARDS = ("reference", "v1")


@dataclass(frozen=True)
class GdasOptions(DifferentiableOptions):
    # NB201's GDAS setting: temperature annealed linearly from 10 to 0.1 over the search.
    tau_max: float = 10.0
    tau_min: float = 0.1
    # "reference": AutoDL's forward_gdas, behind NB201's published 93.61 -- the unsampled one-hot entries of
    # each edge are added as scalars (value 0), so every alpha of an edge gets a gradient, `none` sampled or
    # not. "v1": forward_gdas_v1, only the sampled op's entry (an edge that samples `none` gets none).
    forward: str = "reference"

    def validate(self) -> None:
        super().validate()
        _positive(tau_min=self.tau_min)
        if self.tau_max < self.tau_min:
            raise HarnessError(f"strategy.gdas.tau_max={self.tau_max!r} must be >= tau_min={self.tau_min!r}")
        if self.forward not in GDAS_FORWARDS:
            raise one_of("strategy.gdas.forward", self.forward, GDAS_FORWARDS)


@STRATEGIES.register("gdas")
class Gdas(DifferentiableStrategy):
    """GDAS (Dong & Yang 2019): one Gumbel-sampled op per edge forward, softmax gradient backward."""

    name = "gdas"
    Options = GdasOptions
    mechanism = (
        "GDAS: hard one-hot Gumbel-softmax sample per edge forward (only the sampled op runs), straight-through "
        "soft gradient backward, temperature annealed linearly"
    )

    @property
    def unsampled_as_scalars(self) -> bool:
        return self.options.forward == "reference"

    def temperature(self, step: int) -> float:
        o = self.options
        return o.tau_max - (o.tau_max - o.tau_min) * step / max(1, self.training_steps() - 1)

    def mixing(self, step: int, purpose: int) -> tuple[torch.Tensor, tuple[int, ...]]:
        return gumbel_hard(self.alpha, self.temperature(step), self._generator(step, purpose))

    def _generator(self, step: int, purpose: int) -> torch.Generator:
        # A pure function of (seed, step, purpose): a resumed run samples the same ops.
        return torch.Generator().manual_seed(int(self.ctx.rng(6, step, purpose).integers(2**62)))

    def extra_record(self, step: int) -> dict:
        return {"temperature": self.temperature(min(step, self.training_steps() - 1))}

    def extra_summary(self) -> dict:
        return {"gdas_forward": "forward_gdas" if self.unsampled_as_scalars else "forward_gdas_v1"}


def gumbel_hard(alpha: torch.Tensor, tau: float, generator: torch.Generator) -> tuple[torch.Tensor, tuple[int, ...]]:
    """One-hot rows (exactly 0 / 1 in value) whose gradient is that of softmax((log_softmax(alpha) + g) / tau),
    and the sampled op of each row, on the host (one transfer per sample instead of one per op and cell)."""
    gumbel = -torch.empty(alpha.shape, device=generator.device).exponential_(generator=generator).log().to(alpha.device)
    soft = F.softmax((F.log_softmax(alpha, dim=-1) + gumbel) / tau, dim=-1)
    index = soft.argmax(dim=-1)
    hard = F.one_hot(index, alpha.shape[-1]).to(soft.dtype)
    # soft - soft.detach() is exactly zero in value, so the forward weights are exactly one-hot.
    return hard + (soft - soft.detach()), tuple(index.tolist())
