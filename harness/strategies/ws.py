"""`ws`: plain weight sharing, SPOS-style -- one uniformly sampled single path trained per step.

`lr_scale` makes it the step-size-matched control of a variant that shrinks its updates (dinas keeps only
part of each update's norm): the learning rate (and its floor) of the whole run is multiplied by it, so a
comparison can tell "a different direction" from "a smaller step".
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from harness.errors import HarnessError
from harness.training.optim import sgd_with_cosine
from harness.registry import STRATEGIES
from harness.strategies.supernet import SinglePathStrategy


@dataclass(frozen=True)
class WsOptions:
    lr_scale: float = 1.0  # multiplies train.lr and train.lr_min for the whole run

    def validate(self) -> None:
        if not self.lr_scale > 0:
            raise HarnessError(f"strategy.ws.lr_scale={self.lr_scale!r} must be > 0 (1 = the preset's learning rate)")


@STRATEGIES.register("ws")
class WeightSharing(SinglePathStrategy):
    name = "ws"
    Options = WsOptions

    def __init__(self, ctx, options: WsOptions):
        super().__init__(ctx, options)
        if options.lr_scale != 1.0:
            # Rebuilt before any step, so the optimiser holds no state yet; lr_scale = 1 keeps ws's exact numbers.
            self.optimizer, self.scheduler = sgd_with_cosine(self.params, self.scaled_train(), self.training_steps())

    def scaled_train(self):
        s = self.options.lr_scale
        return replace(self.ctx.train, lr=self.ctx.train.lr * s, lr_min=self.ctx.train.lr_min * s)

    def summary(self) -> dict:
        train = self.scaled_train()
        return {"lr_scale": self.options.lr_scale, "lr": train.lr, "lr_min": train.lr_min}
