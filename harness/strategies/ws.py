"""`ws`: plain weight sharing, SPOS-style -- one uniformly sampled single path trained per step.

Three options make it a control for a variant that changes the update (dinas projects it):
* `lr_scale` -- parameter-space step match: the learning rate (and its floor) of the whole run is multiplied by
  it (set to dinas' `mean_kept_grad_norm`, the steps have dinas' mean parameter-update norm);
* `function_match` -- function-space step match: the same multiplication, by dinas' measured output change on
  fresh inputs relative to ws (`protection_fresh`, calibrated on tuning seeds with
  `benchmarks/calibrate_dinas_control.py`), so every layer's output moves on fresh inputs by what dinas' does
  on average;
* `direction_control` -- the step is projected by dinas' own machinery (default options) fed the inputs of an
  independently drawn architecture on an independent batch: shaped like dinas' step, protecting nothing the
  training sampled.
A comparison against them tells "a different direction" from "a smaller step".
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from harness.errors import HarnessError
from harness.training.optim import sgd_with_cosine
from harness.registry import STRATEGIES
from harness.strategies.supernet import SinglePathStrategy


@dataclass(frozen=True)
class WsOptions:
    lr_scale: float = 1.0  # multiplies train.lr and train.lr_min for the whole run (parameter-space step match)
    function_match: float = 1.0  # the same, named for the function-space step match (dinas' protection_fresh)
    direction_control: bool = False  # project the step with dinas' machinery fed unrelated inputs

    def validate(self) -> None:
        p = "strategy.ws"
        for name in ("lr_scale", "function_match"):
            if not getattr(self, name) > 0:
                raise HarnessError(f"{p}.{name}={getattr(self, name)!r} must be > 0 (1 = the preset's learning rate)")
        chosen = [name for name, on in (("lr_scale", self.lr_scale != 1.0), ("function_match", self.function_match != 1.0),
                                        ("direction_control", self.direction_control)) if on]
        if len(chosen) > 1:
            raise HarnessError(f"{p}: {' and '.join(chosen)} are separate controls; set one of them per run")

    @property
    def control(self) -> str:
        if self.direction_control:
            return "direction"
        if self.function_match != 1.0:
            return "function-space step match"
        return "parameter-space step match" if self.lr_scale != 1.0 else "none"

    @property
    def step_scale(self) -> float:
        return self.lr_scale * self.function_match


@STRATEGIES.register("ws")
class WeightSharing(SinglePathStrategy):
    name = "ws"
    Options = WsOptions

    def __new__(cls, ctx=None, options: WsOptions | None = None):
        if options is not None and options.direction_control:
            # The direction control is dinas' projection machinery with an unrelated input source, recorded as ws.
            from harness.strategies.dinas.control import DirectionControl

            return DirectionControl(ctx, options)
        return super().__new__(cls)

    def __init__(self, ctx, options: WsOptions):
        super().__init__(ctx, options)
        if options.step_scale != 1.0:
            # Rebuilt before any step, so the optimiser holds no state yet; a scale of 1 keeps ws's exact numbers.
            self.optimizer, self.scheduler = sgd_with_cosine(self.params, self.scaled_train(), self.training_steps())

    def scaled_train(self):
        s = self.options.step_scale
        return replace(self.ctx.train, lr=self.ctx.train.lr * s, lr_min=self.ctx.train.lr_min * s)

    def summary(self) -> dict:
        train = self.scaled_train()
        return {"control": self.options.control, "lr_scale": self.options.lr_scale, "function_match": self.options.function_match,
                "lr": train.lr, "lr_min": train.lr_min}
