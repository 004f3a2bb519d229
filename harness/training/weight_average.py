"""An exponential moving average of a strategy's weights over the end of training (eval.weights = ema).

Engine hook, strategy-agnostic: it averages whatever `strategy.averaged_modules()` returns (the supernet;
every sub-supernet of a split strategy). Span S = eval.ema_horizon x the run's steps; decay 1 - 2/(S + 1),
so the average's centre of mass lies (S - 1)/2 steps before the end. It starts 3S steps before the end
from the weights of that step (what came earlier would carry weight e^-6 < 0.3%), so the first 1 - 3h of
training pays nothing. Floating-point buffers (BN running statistics where the space keeps them) are
averaged like weights; integer buffers are copied. If the set of averaged tensors changes (a split
strategy splits inside the window) the average restarts from the new weights; `summary()` says when.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch


class WeightAverage:
    def __init__(self, total_steps: int, horizon: float):
        self.span = max(1, round(horizon * total_steps))
        self.decay = 1.0 - 2.0 / (self.span + 1)
        self.start = max(0, total_steps - 3 * self.span)
        self.average: list[torch.Tensor] = []
        self.signature: tuple = ()
        self.updates = 0
        self.restarts: list[int] = []
        self._cached: tuple[tuple[int, ...], list[torch.Tensor], tuple] = ((), [], ())

    def _tensors(self, strategy) -> tuple[list[torch.Tensor], tuple]:
        """(the averaged tensors, their shapes and dtypes). state_dict() values share storage with the weights;
        both are cached while the modules stay the same objects, so a step in the window builds neither."""
        modules = strategy.averaged_modules()
        key = tuple(id(m) for m in modules)
        if key != self._cached[0]:
            tensors = [t for m in modules for t in m.state_dict(keep_vars=False).values()]
            self._cached = (key, tensors, tuple((tuple(t.shape), t.dtype) for t in tensors))
        return self._cached[1], self._cached[2]

    def forced_arch(self, step: int):
        return None

    def after_step(self, step: int, strategy) -> None:
        """`step` counts finished optimiser steps; the average takes in the weights after steps start+1 .. end."""
        if step <= self.start:
            return
        with torch.no_grad():
            current, signature = self._tensors(strategy)
            if signature != self.signature:
                if self.signature:
                    self.restarts.append(step)
                self.signature = signature
                self.average = [t.detach().clone() for t in current]
                self.updates = 1
                return
            for avg, t in zip(self.average, current):
                if avg.is_floating_point():
                    avg.lerp_(t, 1.0 - self.decay)
                else:
                    avg.copy_(t)
            self.updates += 1

    @contextlib.contextmanager
    def swapped_in(self, strategy) -> Iterator[None]:
        """The strategy's modules hold the averaged weights inside the block, their own weights after it."""
        current, signature = self._tensors(strategy)
        if not self.average or signature != self.signature:
            raise RuntimeError("no weight average to estimate with: training ended before the averaging window")
        saved = [t.detach().clone() for t in current]
        with torch.no_grad():
            for t, avg in zip(current, self.average):
                t.copy_(avg)
        try:
            yield
        finally:
            with torch.no_grad():
                for t, own in zip(current, saved):
                    t.copy_(own)

    def state_dict(self) -> dict:
        return {"average": self.average, "signature": list(self.signature), "updates": self.updates, "restarts": self.restarts}

    def load_state_dict(self, state: dict) -> None:
        self.average = list(state["average"])
        self.signature = tuple((tuple(shape), dtype) for shape, dtype in state["signature"])
        self.updates = state["updates"]
        self.restarts = list(state["restarts"])

    def summary(self) -> dict:
        return {"span_steps": self.span, "decay": self.decay, "first_step": self.start + 1, "updates": self.updates,
                "restarted_at_steps": self.restarts}
