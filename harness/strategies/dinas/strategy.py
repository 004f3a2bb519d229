"""`dinas`: disturbance-immune weight sharing (Niu et al. 2020, arXiv 2003.13089), implemented from the idea.

`ws` with one change: between backward and the optimiser step, the gradient of every shared conv / linear
weight the current path used is projected so that the update leaves what earlier architectures learned
(their inputs' responses, or their gradient directions) unchanged. Everything else -- path sampling,
optimiser, schedule, clipping, budget -- is `ws`'s code, so the config diff between them is the projection.

Recorded choices (all in `Options`, written to the run's config.json and metrics.json):
* variant "input": per layer, P = (I + S/alpha)^-1 over the inputs earlier paths fed it (conv inputs as
  patches, `input_samples` drawn per step), updated recursively (OWM); the weight gradient G becomes G P.
  A linear layer's bias is projected jointly with its weight (input extended by a constant 1).
  variant "grad": per parameter tensor, an orthonormal basis of earlier paths' loss gradients capped at
  `basis_size` top directions (OGD); the gradient loses its component in that span.
* which parameters: the conv / linear weights of the path's live ops (only tensors that received a
  gradient this step). `layers = "cells"` restricts this to candidate ops inside cells; `"all"` (default)
  also covers the stem, the reduction blocks and the classifier, which every path shares. BN affine
  parameters are never projected: they are per-channel scales every path shares and would freeze.
* when the subspace grows: after projecting step t's gradient, step t's architecture is absorbed (its
  inputs or gradients), so a path is never projected against itself; `absorb_every` thins this out.
* forgetting: each absorption into a layer first multiplies the existing constraint by `decay`
  (input: I - P <- decay (I - P); grad: the basis energy decays and weak directions are replaced);
  `refresh_every` additionally resets every projector on a fixed step period (0 = never).
* `start_fraction`: the first part of training is plain `ws` (projecting a random initialisation protects
  nothing and slows the early fit).
* order: the loss gradient is projected before clipping, weight decay and momentum; SGD's L2 term is
  added by the optimiser unprojected (as in `ws`), and momentum accumulates projected gradients.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from harness.errors import HarnessError, one_of
from harness.strategies.dinas.projection import GradientBasis, InputProjector, sample_conv_patches
from harness.registry import STRATEGIES
from harness.strategies.supernet import SinglePathStrategy

VARIANTS = ("input", "grad")
LAYER_SETS = ("all", "cells")


@dataclass(frozen=True)
class DinasOptions:
    variant: str = "input"
    layers: str = "all"
    alpha: float = 10.0  # input: regulariser, relative to one step's mean input correlation (tuned on probes: 1, 10)
    input_samples: int = 32  # input: patches (conv) or rows (linear) absorbed per layer and step
    basis_size: int = 16  # grad: directions kept per parameter tensor
    decay: float = 0.99  # per absorption: how much of the older constraint survives
    refresh_every: int = 0  # steps between full resets of every projector; 0 = never
    absorb_every: int = 1  # absorb the architecture of every k-th step
    start_fraction: float = 0.0  # fraction of training that runs as plain ws before projecting

    def validate(self) -> None:
        p = "strategy.dinas"
        if self.variant not in VARIANTS:
            raise one_of(f"{p}.variant", self.variant, VARIANTS)
        if self.layers not in LAYER_SETS:
            raise one_of(f"{p}.layers", self.layers, LAYER_SETS)
        if not self.alpha > 0:
            raise HarnessError(f"{p}.alpha={self.alpha!r} must be > 0")
        for name in ("input_samples", "basis_size", "absorb_every"):
            if getattr(self, name) < 1:
                raise HarnessError(f"{p}.{name}={getattr(self, name)!r} must be a positive integer")
        if not 0 < self.decay <= 1:
            raise HarnessError(f"{p}.decay={self.decay!r} must be in (0, 1] (1 = never forget)")
        if self.refresh_every < 0:
            raise HarnessError(f"{p}.refresh_every={self.refresh_every!r} must be >= 0 (0 = never)")
        if not 0 <= self.start_fraction < 1:
            raise HarnessError(f"{p}.start_fraction={self.start_fraction!r} must be in [0, 1)")


def _projectable(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear):
        return True
    return (
        isinstance(module, nn.Conv2d)
        and module.groups == 1
        and tuple(module.dilation) == (1, 1)
        and not isinstance(module.padding, str)
        and module.padding_mode == "zeros"
    )


@STRATEGIES.register("dinas")
class DisturbanceImmune(SinglePathStrategy):
    name = "dinas"
    Options = DinasOptions

    def __init__(self, ctx, options: DinasOptions):
        super().__init__(ctx, options)
        self.layers = self._select_layers()
        self.projectors: dict[str, InputProjector | GradientBasis] = {}
        self.start_step = int(options.start_fraction * self.training_steps())
        self._inputs: dict[str, torch.Tensor] = {}
        self._patch_rng: tuple[int, torch.Generator] | None = None
        self.stats = {"projected_steps": 0, "kept_norm_sum": 0.0, "kept_norm_last": 1.0, "resets": 0}
        if options.variant == "input":
            for name, module in self.layers.items():
                module.register_forward_pre_hook(self._capture_hook(name))

    def _select_layers(self) -> dict[str, nn.Module]:
        if self.options.layers == "cells":
            if not hasattr(self.supernet, "cell_modules"):
                raise HarnessError(f"strategy.dinas.layers='cells' needs a supernet with cells; space {self.ctx.space.name!r} has none")
            scope = {id(m) for cell in self.supernet.cell_modules() for m in cell.modules()}
        else:
            scope = None
        return {
            name: module
            for name, module in self.supernet.named_modules()
            if _projectable(module) and (scope is None or id(module) in scope)
        }

    # ---- which steps do what -------------------------------------------------------------------------
    def _step(self) -> int:
        # The scheduler has stepped once per finished optimiser step, so this is the current step, also after a resume.
        return self.scheduler.last_epoch

    def _absorbing(self, step: int) -> bool:
        return step >= self.start_step and (step - self.start_step) % self.options.absorb_every == 0

    # ---- input capture (variant "input") --------------------------------------------------------------
    def _generator(self, step: int) -> torch.Generator:
        if self._patch_rng is None or self._patch_rng[0] != step:
            seed = int(self.ctx.rng(3, step).integers(2**62))
            self._patch_rng = (step, torch.Generator().manual_seed(seed))
        return self._patch_rng[1]

    def _capture_hook(self, name: str):
        def hook(module: nn.Module, args) -> None:
            if not (module.training and torch.is_grad_enabled()):
                return  # estimates and probes run in eval mode / no_grad: not training inputs
            step = self._step()
            if not self._absorbing(step):
                return
            x = args[0].detach()
            count = self.options.input_samples
            if isinstance(module, nn.Conv2d):
                rows = sample_conv_patches(x, module.kernel_size, module.stride, module.padding, count, self._generator(step))
            else:
                x = x.reshape(-1, x.shape[-1])
                pick = torch.randperm(len(x), generator=self._generator(step), device="cpu")[:count].to(x.device)
                rows = x[pick]
            if module.bias is not None:
                rows = torch.cat([rows, rows.new_ones(len(rows), 1)], dim=1)
            self._inputs[name] = rows

        return hook

    # ---- the projection --------------------------------------------------------------------------------
    def before_optimizer_step(self, arch, images: torch.Tensor) -> None:
        step = self._step()
        opts = self.options
        if opts.refresh_every and step > self.start_step and (step - self.start_step) % opts.refresh_every == 0:
            for projector in self.projectors.values():
                projector.reset()
            self.stats["resets"] += 1
        if step < self.start_step:
            return
        absorb = self._absorbing(step)
        before = after = 0.0
        for name, module in self.layers.items():
            if module.weight.grad is None:
                continue  # an op off the current path: nothing to protect against, nothing learned
            if opts.variant == "input":
                b, a = self._project_inputs(name, module, absorb)
            else:
                b, a = self._project_gradients(name, module, absorb)
            before += b
            after += a
        self._inputs.clear()
        if before > 0:
            kept = (after / before) ** 0.5
            self.stats["projected_steps"] += 1
            self.stats["kept_norm_sum"] += kept
            self.stats["kept_norm_last"] = kept

    def _project_inputs(self, name: str, module: nn.Module, absorb: bool) -> tuple[float, float]:
        weight = module.weight
        out = weight.shape[0]
        grads = [weight.grad.reshape(out, -1)]
        if module.bias is not None:
            grads.append(module.bias.grad.reshape(out, 1))
        joined = torch.cat(grads, dim=1)
        projector = self.projectors.get(name)
        if projector is None:
            projector = self.projectors[name] = InputProjector(joined.shape[1], self.options.alpha, joined.dtype, joined.device)
        projected = projector.project(joined)
        weight.grad.copy_(projected[:, : weight[0].numel()].reshape(weight.shape))
        if module.bias is not None:
            module.bias.grad.copy_(projected[:, -1])
        if absorb and name in self._inputs:
            projector.decay(self.options.decay)
            projector.absorb(self._inputs[name])
        return float(joined.pow(2).sum()), float(projected.pow(2).sum())

    def _project_gradients(self, name: str, module: nn.Module, absorb: bool) -> tuple[float, float]:
        before = after = 0.0
        for pname, param in module.named_parameters(recurse=False):
            if param.grad is None:
                continue
            key = f"{name}.{pname}"
            basis = self.projectors.get(key)
            if basis is None:
                basis = self.projectors[key] = GradientBasis(param.numel(), self.options.basis_size, dtype=param.dtype, device=param.device)
            raw = param.grad.detach().clone()
            param.grad.copy_(basis.project(raw))
            if absorb:
                basis.absorb(raw, self.options.decay)
            before += float(raw.pow(2).sum())
            after += float(param.grad.pow(2).sum())
        return before, after

    # ---- record and checkpoint -------------------------------------------------------------------------
    def projector_bytes(self) -> int:
        return sum(p.nbytes() for p in self.projectors.values())

    def summary(self) -> dict:
        steps = self.stats["projected_steps"]
        return {
            "options": asdict(self.options),
            "projected_layers": len(self.layers),
            "projectors": len(self.projectors),
            "projector_bytes": self.projector_bytes(),
            "projection_start_step": self.start_step,
            "projected_steps": steps,
            "resets": self.stats["resets"],
            # Share of the gradient norm that survives the projection: 1 = ws, 0 = frozen.
            "mean_kept_grad_norm": self.stats["kept_norm_sum"] / steps if steps else None,
            "last_kept_grad_norm": self.stats["kept_norm_last"] if steps else None,
        }

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["projectors"] = {name: p.state_dict() for name, p in self.projectors.items()}
        state["projection_stats"] = dict(self.stats)
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.projectors = {}
        for name, saved in state.get("projectors", {}).items():
            self.projectors[name] = self._empty_projector(name, saved)
            self.projectors[name].load_state_dict(saved)
        self.stats = dict(state.get("projection_stats", self.stats))

    def _empty_projector(self, name: str, saved: dict):
        device = next(self.supernet.parameters()).device
        if self.options.variant == "input":
            return InputProjector(saved["matrix"].shape[0], self.options.alpha, saved["matrix"].dtype, device)
        return GradientBasis(saved["basis"].shape[1], self.options.basis_size, dtype=saved["basis"].dtype, device=device)
