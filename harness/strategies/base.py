"""The interface every strategy implements; the engine, metrics and reporting see nothing else.

A strategy is told how many steps it may train (`training_steps`), is handed one training batch per
step (`train_step`), and then scores architectures (`estimate`, higher = predicted better). It carries
its own state for checkpoints and reports its decisions (`summary`) for the run record.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from harness.config import ComputeConfig, TrainConfig
from harness.data.tensors import DeviceData
from harness.spaces.base import SearchSpace


@dataclass(frozen=True)
class NoOptions:
    pass


@dataclass
class StrategyContext:
    space: SearchSpace
    shape: Any  # the space's network shape (channels, cells, classes, BN mode)
    train: TrainConfig
    data: DeviceData
    device: torch.device
    seed: int
    total_steps: int  # the budget in optimiser steps, from the preset (epochs * steps_per_epoch, or train.steps)
    progress: bool = True
    estimate_by: str = "accuracy"  # eval.estimate_by: how supernet-based strategies turn (acc, loss) into a score
    compute: ComputeConfig = field(default_factory=ComputeConfig)  # [compute]: precision, layout, estimate_archs
    flip: bool = False  # eval.flip: supernet scores average each image's prediction with its mirror's
    all_estimators: bool = False  # eval.all_estimators: also the columns every other estimator needs

    @property
    def flip_views(self) -> bool:
        """Whether estimation passes also run the mirrored images."""
        return self.flip or self.all_estimators

    def columns(self, tally) -> dict[str, np.ndarray]:
        """A supernet strategy's estimate columns from its evaluation.Tally, as eval.* asks."""
        from harness.training.evaluation import supernet_columns

        return supernet_columns(tally, self.estimate_by, self.flip, self.all_estimators)

    def rng(self, *keys: int) -> np.random.Generator:
        """A generator that depends only on (seed, keys): decisions at a step are the same after a resume."""
        return np.random.default_rng([self.seed, *keys])


class Strategy(ABC):
    name: ClassVar[str]
    Options: ClassVar[type] = NoOptions
    # True if train_step can be told which architecture to train (the disturbance probe needs it).
    supports_forced_arch: ClassVar[bool] = False

    def __init__(self, ctx: StrategyContext, options: Any):
        self.ctx = ctx
        self.options = options

    def training_steps(self) -> int:
        return self.ctx.total_steps

    @abstractmethod
    def train_step(self, step: int, images: torch.Tensor, labels: torch.Tensor, arch: Any = None) -> torch.Tensor | float:
        """One update; returns the training loss, preferably as a 0-d tensor left on the device: the engine
        checks finiteness every train.check_finite_every steps, so a float here costs a host sync per step."""

    @abstractmethod
    def estimate(self, archs: Sequence[Any]) -> dict[str, np.ndarray]:
        """Scores of `archs`: key 'score' (higher = better) plus any extra per-arch columns to record."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def summary(self) -> dict:
        """Decisions and settings worth recording next to the result (split choices, derived arch...)."""
        return {}

    def averaged_modules(self) -> list[torch.nn.Module]:
        """The modules whose weights eval.weights = ema averages over the end of training; [] = the strategy
        has no trained weights to average (eval.weights = ema is refused for it)."""
        return []

    def on_train_end(self) -> None:
        """Called once after the last step (also on resume of a finished training)."""
