"""`dinas`: disturbance-immune weight sharing (Niu et al. 2020, "Disturbance-immune weight sharing for neural
architecture search", arXiv 2003.13089), implemented from the idea (the paper's code is not public).

`ws` with one change: the update of every shared conv / linear weight the current path used is projected so
that it leaves what earlier architectures learned (their inputs' responses, or their gradient directions)
unchanged. Path sampling, schedule, clipping and budget are `ws`'s code.

Recorded choices (all in `Options`, written to the run's config.json and metrics.json):
* variant "input": per layer, P = (I + S/alpha)^-1 over the inputs earlier paths fed it (conv inputs as
  patches, `input_samples` drawn per step), updated recursively (OWM, Zeng et al. 2019); an update row-space
  direction U (out x d) becomes U P. A linear layer's bias is projected jointly with its weight (input
  extended by a constant 1). variant "grad": per parameter tensor, an orthonormal basis of earlier paths'
  loss gradients capped at `basis_size` top directions (OGD, Farajtabar et al. 2019).
* apply (where the projection acts): "update" projects the shipped optimiser's final direction
  u = d + mu buf (Nesterov) with d = clipped gradient + weight decay, buf the raw momentum buffer, and applies
  W -= lr P(u): the applied update itself is orthogonal to the protected subspace. "sgd" (OWM's choice):
  projected tensors take plain SGD steps W -= lr P(g), no momentum, no weight decay. "gradient": the loss
  gradient is projected before the optimiser (momentum then carries earlier paths' gradients into
  directions absorbed later: it leaks; kept for comparison). Tensors nobody projects (BN affine) always get
  the shipped SGD.
* rescale: each projected update gets the norm of its unprojected one (direction changes, step size not).
* which parameters: the conv / linear weights of the path's live ops. `layers = "cells"` restricts this to
  candidate ops inside cells; `"all"` also covers stem, reduction blocks and classifier.
* when the subspace grows: after projecting step t's update, step t's architecture is absorbed, so a path
  is never projected against itself; `absorb_every` thins this out. Forgetting: each absorption first
  multiplies the older constraint by `decay`; `refresh_every` resets all projectors periodically.
* measurement (every `measure_every` steps): protection = ||dW X_prev|| / ||dW_ws X_prev|| for the update
  dW actually applied and the update dW_ws plain ws would apply from the same state, on held-out rows X_prev
  of the previous absorbed path's inputs (positions absorption did not draw); selectivity = that over the
  same ratio on a fresh batch's rows. The ratio on the absorbed rows themselves is kept as a sanity check.
* absorb_source "unrelated" (the direction control, `ws --set strategy.ws.direction_control=true`): the
  projector absorbs what an independently drawn architecture feeds the layers on an independent batch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from harness.errors import HarnessError, one_of
from harness.training.optim import clip_gradients
from harness.registry import STRATEGIES
from harness.strategies.dinas.measure import ProtectionMeter
from harness.strategies.dinas.projection import (
    GradientBasis, InputProjector, heldout_conv_patches, heldout_rows, sample_conv_patches, sample_conv_patches_with_ids,
    sample_rows, sample_rows_with_ids,
)
from harness.strategies.dinas.update import clip_coefficient, sgd_direction
from harness.strategies.supernet import SinglePathStrategy

VARIANTS = ("input", "grad")
LAYER_SETS = ("all", "cells")
APPLY = ("update", "sgd", "gradient")
ABSORB_SOURCES = ("path", "unrelated")
# extra_batch streams of the fresh (never absorbed) inputs of the protection measurement and of the unrelated
# inputs the direction control absorbs.
FRESH_STREAM, UNRELATED_STREAM = 53, 59
# ctx.rng keys of the random numbers drawn by absorption sampling, by the measurement and by the direction
# control (kept apart so that switching the measurement on or off never moves what is absorbed).
ABSORB_KEY, MEASURE_KEY, UNRELATED_ROWS_KEY, UNRELATED_ARCH_KEY = 3, 4, 5, 6


@dataclass(frozen=True)
class DinasOptions:
    variant: str = "input"
    layers: str = "all"
    alpha: float = 10.0  # input: regulariser, relative to one step's mean input correlation
    input_samples: int = 32  # input: patches (conv) or rows (linear) absorbed per layer and step
    basis_size: int = 16  # grad: directions kept per parameter tensor
    decay: float = 0.99  # per absorption: how much of the older constraint survives
    refresh_every: int = 0  # steps between full resets of every projector; 0 = never
    absorb_every: int = 1  # absorb the architecture of every k-th step
    start_fraction: float = 0.0  # fraction of training that runs as plain ws before projecting
    apply: str = "update"  # what is projected: the final SGD update, a plain-SGD gradient step, or the gradient
    rescale: bool = False  # give each projected update the norm of the unprojected one (direction only)
    measure_every: int = 50  # steps between protection measurements; 0 = off
    # "path": absorb the inputs the trained path fed each layer (DI-WS). "unrelated": absorb the inputs an
    # independently drawn architecture feeds the layers on an independent batch (the direction control: the
    # step is shaped like dinas' but protects nothing the training sampled).
    absorb_source: str = "path"

    def validate(self) -> None:
        p = "strategy.dinas"
        if self.variant not in VARIANTS:
            raise one_of(f"{p}.variant", self.variant, VARIANTS)
        if self.layers not in LAYER_SETS:
            raise one_of(f"{p}.layers", self.layers, LAYER_SETS)
        if self.apply not in APPLY:
            raise one_of(f"{p}.apply", self.apply, APPLY)
        if self.absorb_source not in ABSORB_SOURCES:
            raise one_of(f"{p}.absorb_source", self.absorb_source, ABSORB_SOURCES)
        if self.absorb_source == "unrelated" and self.variant != "input":
            raise HarnessError(f"{p}.absorb_source='unrelated' needs variant='input' (it feeds the input projector); got variant={self.variant!r}")
        if not self.alpha > 0:
            raise HarnessError(f"{p}.alpha={self.alpha!r} must be > 0")
        for name in ("input_samples", "basis_size", "absorb_every"):
            if getattr(self, name) < 1:
                raise HarnessError(f"{p}.{name}={getattr(self, name)!r} must be a positive integer")
        if not 0 < self.decay <= 1:
            raise HarnessError(f"{p}.decay={self.decay!r} must be in (0, 1] (1 = never forget)")
        if self.refresh_every < 0:
            raise HarnessError(f"{p}.refresh_every={self.refresh_every!r} must be >= 0 (0 = never)")
        if self.measure_every < 0:
            raise HarnessError(f"{p}.measure_every={self.measure_every!r} must be >= 0 (0 = off)")
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


def _joined(tensors: list[torch.Tensor]) -> torch.Tensor:
    """A layer's weight (and bias) as one (out, d) matrix, columns in the order of its input rows."""
    if len(tensors) == 1:
        return tensors[0].reshape(tensors[0].shape[0], -1)  # a view: no copy for the bias-free convs
    return torch.cat([t.reshape(t.shape[0], -1) for t in tensors], dim=1)


def _split(joined: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    if len(like) == 1:
        return [joined.reshape(like[0].shape)]
    parts, start = [], 0
    for t in like:
        width = t[0].numel() if t.dim() > 1 else 1
        parts.append(joined[:, start : start + width].reshape(t.shape))
        start += width
    return parts


@STRATEGIES.register("dinas")
class DisturbanceImmune(SinglePathStrategy):
    name = "dinas"
    Options = DinasOptions

    def __init__(self, ctx, options: DinasOptions):
        super().__init__(ctx, options)
        self.layers = self._select_layers()
        self.projectors: dict[str, InputProjector | GradientBasis] = {}
        self.start_step = int(options.start_fraction * self.training_steps())
        # A run too short for 8 measurements at `measure_every` (smoke) measures 8 times anyway: it still records.
        projected = self.training_steps() - self.start_step
        self.measure_interval = min(options.measure_every, max(1, projected // 8)) if options.measure_every else 0
        self._group_index = {p: i for i, group in enumerate(self.optimizer.param_groups) for p in group["params"]}
        self._inputs: dict[str, torch.Tensor] = {}
        self._generators: dict[tuple[int, int], torch.Generator] = {}
        self._arch = None
        device = ctx.device
        zero = torch.zeros((), dtype=torch.float64, device=device)
        # Per-step statistics stay on the device; summary() reads them once.
        self.stats = {"projected_steps": 0, "resets": 0}
        self.norms = {"kept_sum": zero.clone(), "applied_sum": zero.clone(), "kept_last": zero.clone() + 1, "valid": zero.clone()}
        # Measurement state: rows captured from the previous absorbed path, raw momentum buffers of the `ws`
        # reference where the variant's own buffer is not raw, and the accumulated ratios.
        self.meter = ProtectionMeter(device)
        self._captured: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._captured_step = -1
        self._capturing: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # this step's rows, kept once the step is done
        self._shadow: dict[str, dict] = {}
        # Where the capture hook puts the rows of a side forward (measurement's fresh batch, the direction
        # control's unrelated batch) and the generator key it draws them with; None during training forwards.
        self._sink: dict[str, torch.Tensor] | None = None
        self._sink_key = MEASURE_KEY
        if options.variant == "input" or options.measure_every > 0:
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

    def _measuring(self, step: int) -> bool:
        every = self.measure_interval
        return every > 0 and step > self.start_step and (step - self.start_step) % every == 0

    def _previous_absorbed(self, step: int) -> int:
        """The last absorbing step before `step` (-1 if none)."""
        if step - 1 < self.start_step:
            return -1
        every = self.options.absorb_every
        return self.start_step + (step - 1 - self.start_step) // every * every

    def _captures(self, step: int) -> bool:
        """True at the absorbing step whose path the next measurement compares against."""
        every = self.measure_interval
        if every == 0 or not self._absorbing(step):
            return False
        following = self.start_step + ((step - self.start_step) // every + 1) * every
        return self._previous_absorbed(following) == step

    # ---- input capture ---------------------------------------------------------------------------------
    def _generator(self, key: int, step: int) -> torch.Generator:
        if (key, step) not in self._generators:
            self._generators = {k: g for k, g in self._generators.items() if k[1] == step}
            seed = int(self.ctx.rng(key, step).integers(2**62))
            self._generators[key, step] = torch.Generator(device=self.ctx.device).manual_seed(seed)
        return self._generators[key, step]

    def _rows(self, module: nn.Module, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        count = self.options.input_samples
        if isinstance(module, nn.Conv2d):
            rows = sample_conv_patches(x, module.kernel_size, module.stride, module.padding, count, generator)
        else:
            rows = sample_rows(x, count, generator)
        return self._with_bias(module, rows)

    @staticmethod
    def _with_bias(module: nn.Module, rows: torch.Tensor) -> torch.Tensor:
        if module.bias is not None:
            rows = torch.cat([rows, rows.new_ones(len(rows), 1)], dim=1)
        return rows

    def _measurement_rows(self, module: nn.Module, x: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(drawn, held out): rows drawn exactly as absorption draws them (for variant "input": the absorbed
        rows), and as many other rows of the same input at positions absorption did not draw, from the
        measurement's own generator."""
        count = self.options.input_samples
        drawing, measuring = self._generator(ABSORB_KEY, step), self._generator(MEASURE_KEY, step)
        if isinstance(module, nn.Conv2d):
            geometry = (module.kernel_size, module.stride, module.padding)
            drawn, ids = sample_conv_patches_with_ids(x, *geometry, count, drawing)
            other = heldout_conv_patches(x, *geometry, ids, count, measuring)
        else:
            drawn, ids = sample_rows_with_ids(x, count, drawing)
            other = heldout_rows(x, ids, count, measuring)
        return self._with_bias(module, drawn), self._with_bias(module, other)

    def _capture_hook(self, name: str):
        def hook(module: nn.Module, args) -> None:
            if self._sink is not None:  # a side forward: the measurement's fresh batch or the unrelated inputs
                self._sink[name] = self._rows(module, args[0].detach(), self._generator(self._sink_key, self._step()))
                return
            if not (module.training and torch.is_grad_enabled()):
                return  # estimates and probes run in eval mode / no_grad: not training inputs
            step = self._step()
            absorb = self.options.variant == "input" and self.options.absorb_source == "path" and self._absorbing(step)
            capture = self._captures(step)
            if not (absorb or capture):
                return
            x = args[0].detach()
            if capture:
                # The same draws as absorption's (its generator, its order), plus held-out rows from the measurement's.
                rows, other = self._measurement_rows(module, x, step)
                self._capturing[name] = (rows, other)
            else:
                rows = self._rows(module, x, self._generator(ABSORB_KEY, step))
            if absorb:
                self._inputs[name] = rows

        return hook

    # ---- the projection --------------------------------------------------------------------------------
    def before_optimizer_step(self, arch, images: torch.Tensor) -> None:
        self._arch = arch
        step = self._step()
        opts = self.options
        if opts.refresh_every and step > self.start_step and (step - self.start_step) % opts.refresh_every == 0:
            for projector in self.projectors.values():
                projector.reset()
            self.stats["resets"] += 1

    def _units(self) -> list[tuple[str, str, list[nn.Parameter]]]:
        """(projector key, layer name, tensors projected together) for every projected tensor with a gradient."""
        units = []
        for name, module in self.layers.items():
            if module.weight.grad is None:
                continue  # an op off the current path: nothing to protect against, nothing learned
            params = [p for p in (module.weight, module.bias) if p is not None and p.grad is not None]
            if self.options.variant == "input":
                units.append((name, name, params))
            else:
                units.extend((f"{name}.{pname}", name, [p]) for pname, p in module.named_parameters(recurse=False) if p.grad is not None)
        return units

    def _project(self, key: str, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.options.variant == "input":
            joined = _joined(tensors)
            projector = self.projectors.get(key)
            if projector is None:
                projector = self.projectors[key] = InputProjector(joined.shape[1], self.options.alpha, joined.dtype, joined.device)
            return _split(projector.project(joined), tensors)
        (t,) = tensors
        basis = self.projectors.get(key)
        if basis is None:
            basis = self.projectors[key] = GradientBasis(t.numel(), self.options.basis_size, dtype=t.dtype, device=t.device)
        return [basis.project(t)]

    def _absorb(self, key: str, layer: str, grads: list[torch.Tensor]) -> None:
        if self.options.variant == "input":
            if layer in self._inputs:
                self.projectors[key].decay(self.options.decay)
                self.projectors[key].absorb(self._inputs[layer])
        else:
            self.projectors[key].absorb(grads[0], self.options.decay)

    def _ws_direction(self, key: str, param: nn.Parameter, grad: torch.Tensor) -> torch.Tensor:
        """The direction plain ws would step `param` in, from a raw momentum buffer kept beside the variant's."""
        state = self._shadow.get(key)
        if state is None:
            own = self.optimizer.state[param].get("momentum_buffer")
            # Before projection starts (start_fraction) the optimiser's buffer is ws's own: continue from it.
            state = self._shadow[key] = {} if own is None else {"momentum_buffer": own.clone()}
        return sgd_direction(param, grad, self.optimizer.param_groups[self._group_index[param]], state)

    def apply_update(self) -> None:
        step = self._step()
        if step < self.start_step:
            super().apply_update()
            return
        opts = self.options
        units = self._units()
        absorb = self._absorbing(step)
        measure = self._measuring(step) and self._captured_step == self._previous_absorbed(step)
        track_ws = self.measure_interval > 0 and opts.apply != "update"
        before: dict[str, torch.Tensor] = {}
        fresh: dict[str, torch.Tensor] = {}
        if absorb and opts.absorb_source == "unrelated":
            self._inputs = self._unrelated_rows(step)
        if measure:
            fresh = self._fresh_rows(step)
            for name in self._captured:
                module = self.layers[name]
                if module.weight.grad is not None:
                    before[name] = _joined([p.detach() for p in (module.weight, module.bias) if p is not None]).clone()
        ws_dirs: dict[nn.Parameter, torch.Tensor] = {}
        raw_sq = kept_sq = applied_sq = None
        with torch.no_grad():
            if opts.apply == "gradient":
                # Today's order: project the loss gradient, then clip, weight decay and momentum by the optimiser.
                if track_ws:
                    coef = clip_coefficient([p.grad for p in self.params if p.grad is not None], self.ctx.train.grad_clip)
                    for key, _, params in units:
                        for i, p in enumerate(params):
                            ws_dirs[p] = self._ws_direction(f"{key}#{i}", p, p.grad * coef)
                for key, layer, params in units:
                    raw = [p.grad.clone() for p in params]
                    projected = self._finish(key, raw)
                    raw_sq, kept_sq, applied_sq = self._tally(raw_sq, kept_sq, applied_sq, raw, projected)
                    for p, g in zip(params, projected[1]):
                        p.grad.copy_(g)
                    if absorb:
                        self._absorb(key, layer, raw)
                super().apply_update()
            else:
                clip_gradients(self.params, self.ctx.train.grad_clip)
                for key, layer, params in units:
                    grads = [p.grad for p in params]
                    group = self.optimizer.param_groups[self._group_index[params[0]]]
                    if opts.apply == "update":
                        raw = [sgd_direction(p, p.grad, group, self.optimizer.state[p]) for p in params]
                        if measure:
                            ws_dirs.update(zip(params, raw))
                    else:  # OWM: plain SGD on the projected gradient, no momentum, no weight decay
                        raw = grads
                        if track_ws:
                            for i, p in enumerate(params):
                                ws_dirs[p] = self._ws_direction(f"{key}#{i}", p, p.grad)
                    projected = self._finish(key, raw)
                    raw_sq, kept_sq, applied_sq = self._tally(raw_sq, kept_sq, applied_sq, raw, projected)
                    for p, u in zip(params, projected[1]):
                        p.add_(u, alpha=-group["lr"])
                    if absorb:
                        self._absorb(key, layer, grads)
                    for p in params:
                        p.grad = None  # done here: the optimiser steps only the tensors nobody projects
                self.optimizer.step()
        self._inputs.clear()
        if raw_sq is not None:
            self._record_norms(raw_sq, kept_sq, applied_sq)
        if measure:
            self._measure(before, ws_dirs, fresh)
        if self._captures(step):
            self._captured, self._captured_step, self._capturing = self._capturing, step, {}

    def _finish(self, key: str, raw: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(projected, applied): the projection of `raw`, and what is applied (rescaled to raw's norm if asked)."""
        projected = self._project(key, raw)
        if not self.options.rescale:
            return projected, projected
        raw_norm = torch.sqrt(sum(r.pow(2).sum() for r in raw))
        kept_norm = torch.sqrt(sum(p.pow(2).sum() for p in projected))
        scale = raw_norm / kept_norm.clamp_min(1e-30)
        return projected, [p * scale for p in projected]

    @staticmethod
    def _tally(raw_sq, kept_sq, applied_sq, raw, finished):
        projected, applied = finished
        r = sum(t.pow(2).sum() for t in raw)
        k = sum(t.pow(2).sum() for t in projected)
        a = k if applied is projected else sum(t.pow(2).sum() for t in applied)
        if raw_sq is None:
            return r, k, a
        return raw_sq + r, kept_sq + k, applied_sq + a

    def _record_norms(self, raw_sq, kept_sq, applied_sq) -> None:
        valid = raw_sq > 0
        denominator = torch.where(valid, raw_sq, torch.ones_like(raw_sq))
        kept = torch.sqrt(kept_sq / denominator).to(torch.float64)
        applied = torch.sqrt(applied_sq / denominator).to(torch.float64)
        self.stats["projected_steps"] += 1
        self.norms["kept_sum"] += torch.where(valid, kept, 0.0)
        self.norms["applied_sum"] += torch.where(valid, applied, 0.0)
        self.norms["valid"] += valid.to(torch.float64)
        self.norms["kept_last"] = torch.where(valid, kept, self.norms["kept_last"])

    # ---- measurement -------------------------------------------------------------------------------
    def _fresh_rows(self, step: int) -> dict[str, torch.Tensor]:
        """Rows every layer of the current path gets from an independent batch (never absorbed)."""
        images, _ = self.ctx.data.extra_batch(self.ctx.seed, step, FRESH_STREAM)
        return self._side_rows(images, self._arch, MEASURE_KEY)

    def _unrelated_rows(self, step: int) -> dict[str, torch.Tensor]:
        """The direction control's absorption: rows an independently drawn architecture feeds the layers on an
        independent batch. Its own rng keys and batch stream: the training path and batch are never touched."""
        images, _ = self.ctx.data.extra_batch(self.ctx.seed, step, UNRELATED_STREAM)
        arch = self.ctx.space.sample(self.ctx.rng(UNRELATED_ARCH_KEY, step))
        return self._side_rows(images, arch, UNRELATED_ROWS_KEY)

    def _side_rows(self, images: torch.Tensor, arch, key: int) -> dict[str, torch.Tensor]:
        """Rows each layer gets in a no_grad forward of `images` through `arch`; BN statistics are put back, so the
        training trajectory is the one without this forward."""
        saved = [b.clone() for b in self.supernet.buffers()]
        self._sink, self._sink_key = {}, key
        try:
            with torch.no_grad():
                self.supernet(images, arch)
        finally:
            rows, self._sink = self._sink, None
            with torch.no_grad():
                for buffer, value in zip(self.supernet.buffers(), saved):
                    buffer.copy_(value)
        return rows

    def _measure(self, before: dict[str, torch.Tensor], ws_dirs: dict, fresh: dict[str, torch.Tensor]) -> None:
        lr = self.optimizer.param_groups[0]["lr"]
        for name, start in before.items():
            module = self.layers[name]
            params = [p for p in (module.weight, module.bias) if p is not None]
            if any(p not in ws_dirs for p in params):
                continue
            after = _joined([p.detach() for p in params])
            applied = after.to(torch.float64) - start.to(torch.float64)
            reference = -lr * _joined([ws_dirs[p] for p in params]).to(torch.float64)
            drawn, heldout = self._captured[name]
            self.meter.add("absorbed", applied, reference, drawn)
            fresh_ratio = self.meter.add("fresh", applied, reference, fresh[name]) if name in fresh else None
            # A linear layer fed a batch no larger than the absorbed rows has no held-out rows (smoke's classifier):
            # selectivity then compares held-out and fresh rows over the same layers only.
            if len(heldout) and fresh_ratio is not None:
                self.meter.add("heldout", applied, reference, heldout)
                self.meter.record("fresh_where_heldout", fresh_ratio)
        self.meter.steps += 1

    # ---- record and checkpoint -------------------------------------------------------------------------
    def projector_bytes(self) -> int:
        return sum(p.nbytes() for p in self.projectors.values())

    def summary(self) -> dict:
        steps = self.stats["projected_steps"]
        valid = float(self.norms["valid"])
        ratios = self.meter.means()
        heldout, absorbed, fresh, matched = ratios["heldout"], ratios["absorbed"], ratios["fresh"], ratios["fresh_where_heldout"]
        return {
            "options": asdict(self.options),
            "projected_layers": len(self.layers),
            "projectors": len(self.projectors),
            "projector_bytes": self.projector_bytes(),
            "projection_start_step": self.start_step,
            "projected_steps": steps,
            "resets": self.stats["resets"],
            # Share of the update's norm (apply=update: the SGD update; sgd / gradient: the gradient) that survives
            # the projection: 1 = ws, 0 = frozen. `applied` is after rescaling (= 1 with rescale = true).
            "mean_kept_grad_norm": float(self.norms["kept_sum"]) / valid if valid else None,
            "last_kept_grad_norm": float(self.norms["kept_last"]) if valid else None,
            "mean_applied_norm_ratio": float(self.norms["applied_sum"]) / valid if valid else None,
            # ||dW X|| / ||dW_ws X||, mean over measured steps and layers (lower = more protection), X = rows of the
            # previous absorbed path's inputs that the projector did not absorb (held out).
            "protection": heldout,
            # The same on rows of an independent batch through the current path: the step's size in function space.
            "protection_fresh": fresh,
            # protection / protection_fresh, < 1: earlier paths' inputs are protected more than inputs never seen.
            "selectivity": heldout / matched if heldout is not None and matched else None,
            # Sanity check, not a measurement: on the rows the projector absorbed (variant "input") the
            # protection is forced by construction (-> 0 as alpha -> 0).
            "sanity_check_absorbed_rows_protection": absorbed,
            "sanity_check_absorbed_rows_selectivity": absorbed / fresh if absorbed is not None and fresh else None,
            "measured_steps": self.meter.steps,
            "measure_interval": self.measure_interval,
        }

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["projectors"] = {name: p.state_dict() for name, p in self.projectors.items()}
        state["projection_stats"] = dict(self.stats)
        state["projection_norms"] = {k: v.clone() for k, v in self.norms.items()}
        state["measurement"] = {
            "meter": self.meter.state_dict(),
            "captured": {k: (a.clone(), b.clone()) for k, (a, b) in self._captured.items()},
            "captured_step": self._captured_step,
            "shadow": {k: {n: t.clone() for n, t in s.items()} for k, s in self._shadow.items()},
        }
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        device = self.ctx.device
        self.projectors = {}
        for name, saved in state.get("projectors", {}).items():
            self.projectors[name] = self._empty_projector(name, saved)
            self.projectors[name].load_state_dict(saved)
        self.stats = dict(state.get("projection_stats", self.stats))
        if "projection_norms" in state:
            self.norms = {k: v.to(device) for k, v in state["projection_norms"].items()}
        if "measurement" in state:
            saved = state["measurement"]
            self.meter.load_state_dict(saved["meter"])
            self._captured = {k: (a.to(device), b.to(device)) for k, (a, b) in saved["captured"].items()}
            self._captured_step = saved["captured_step"]
            self._shadow = {k: {n: t.to(device) for n, t in s.items()} for k, s in saved["shadow"].items()}

    def _empty_projector(self, name: str, saved: dict):
        device = next(self.supernet.parameters()).device
        if self.options.variant == "input":
            return InputProjector(saved["matrix"].shape[0], self.options.alpha, saved["matrix"].dtype, device)
        return GradientBasis(saved["basis"].shape[1], self.options.basis_size, dtype=saved["basis"].dtype, device=device)
