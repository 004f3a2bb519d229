"""Run configuration: a preset (TOML in harness/presets) + `--set section.key=value` overrides, validated.

Unknown sections, keys and values fail with one line naming them and what is accepted.
"""
from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from harness.data.tensors import DataConfig
from harness.errors import HarnessError, one_of
from harness.scoring.metrics import TOP_FRACTIONS  # noqa: F401  (documents what eval reports)


@dataclass(frozen=True)
class ShapeConfig:
    channels: int = 16
    cells_per_stage: int = 5
    bn_mode: str = "batch"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 50
    # 0: epochs * steps_per_epoch. A positive value fixes the number of optimiser steps instead.
    steps: int = 0
    lr: float = 0.05
    lr_min: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    grad_clip: float = 5.0
    checkpoint_every: int = 500  # steps
    # The loss stays on the device; it is checked for finiteness every this many steps and at checkpoints.
    check_finite_every: int = 50

    def validate(self) -> None:
        if self.steps < 0:
            raise HarnessError(f"train.steps={self.steps!r} must be >= 0 (0 = epochs x steps per epoch)")
        if self.epochs < 0:
            raise HarnessError(f"train.epochs={self.epochs!r} must be >= 0")
        if self.epochs < 1 and self.steps < 1:
            raise HarnessError(f"train.epochs={self.epochs} and train.steps={self.steps}: one must be positive")
        if self.lr <= 0:
            raise HarnessError(f"train.lr={self.lr!r} must be > 0")
        if not 0 <= self.lr_min <= self.lr:
            raise HarnessError(f"train.lr_min={self.lr_min!r} must be in 0..train.lr ({self.lr!r})")
        if not 0 <= self.momentum < 1:
            raise HarnessError(f"train.momentum={self.momentum!r} must be in [0, 1)")
        if self.weight_decay < 0:
            raise HarnessError(f"train.weight_decay={self.weight_decay!r} must be >= 0")
        if self.grad_clip < 0:
            raise HarnessError(f"train.grad_clip={self.grad_clip!r} must be >= 0 (0 disables clipping)")
        if self.check_finite_every < 1:
            raise HarnessError(f"train.check_finite_every={self.check_finite_every!r} must be >= 1")
        if self.checkpoint_every < 1:
            raise HarnessError(f"train.checkpoint_every={self.checkpoint_every!r} must be >= 1")


@dataclass(frozen=True)
class EvalConfig:
    num_archs: int = 500  # 0 = the whole space
    arch_seed: int = 0  # which architectures are scored; fixed across strategies and seeds for comparability
    # Splits the space once into a scored half and a probe half of whole function classes (harness/scoring/
    # archsets.py): scored architectures are drawn from the first, probes from the second.
    split_seed: int = 0
    ground_truth: str = "cifar10_test"
    bootstrap: int = 1000
    # What a supernet's score of an architecture is: held-out accuracy, or minus the held-out cross-entropy.
    # Loss is continuous, so estimates on two disjoint image halves agree far better (see README).
    estimate_by: str = "accuracy"
    # Architectures scored besides the scored set, drawn from the probe half (metrics.json -> probe_metrics):
    # any setting is chosen on these, never on the scored set's ground truth.
    probe_archs: int = 0
    probe_seed: int = 1
    # Estimates are computed and checkpointed this many architectures at a time, so a run killed while
    # scoring resumes after the last finished chunk; a strategy batches freely within a chunk.
    chunk_archs: int = 1000
    # Scoring a CIFAR-100 run against a CIFAR-10 ground-truth column (or the reverse) is refused unless
    # this is set; then the run warns and its summary names both.
    allow_other_dataset_ground_truth: bool = False
    # Which weights a supernet strategy is scored with: as trained at the last step, or an exponential moving
    # average over the end of training (harness/training/weight_average.py; span = ema_horizon x the run's steps).
    weights: str = "final"
    ema_horizon: float = 0.25
    # Test-time flips: each held-out image's prediction is the mean of its and its mirror's softmax.
    flip: bool = False
    # Also score every other estimator (weights final|ema x accuracy|loss x flip) on the same supernet, and
    # the two halves of the held-out batches: metrics.json -> estimators (paired, one training run).
    all_estimators: bool = False

    def validate(self) -> None:
        from harness.training.evaluation import ESTIMATE_BY

        # eval.ground_truth is checked against the space's own table when the run loads it.
        if self.estimate_by not in ESTIMATE_BY:
            raise one_of("eval.estimate_by", self.estimate_by, ESTIMATE_BY)
        if self.probe_archs < 0 or self.probe_archs == 1:
            raise HarnessError(f"eval.probe_archs={self.probe_archs!r} must be 0 (none) or at least 2")
        if self.num_archs < 0 or self.num_archs == 1:
            raise HarnessError(f"eval.num_archs={self.num_archs!r} must be 0 (all) or at least 2")
        if self.bootstrap < 1:
            raise HarnessError(f"eval.bootstrap={self.bootstrap!r} must be >= 1 (resamples for the confidence interval)")
        for name in ("arch_seed", "probe_seed", "split_seed"):
            if getattr(self, name) < 0:
                raise HarnessError(f"eval.{name}={getattr(self, name)!r} must be >= 0")
        if self.chunk_archs < 1:
            raise HarnessError(f"eval.chunk_archs={self.chunk_archs!r} must be >= 1")
        if self.weights not in WEIGHTS:
            raise one_of("eval.weights", self.weights, WEIGHTS)
        if not 0 < self.ema_horizon <= 1 / 3:
            raise HarnessError(f"eval.ema_horizon={self.ema_horizon!r} must be in (0, 1/3]: the average starts 3 x horizon before the end")

    @property
    def estimator(self) -> str:
        """The name of the estimator that makes `score`, e.g. final-accuracy or ema-loss-flip."""
        return estimator_name(self.weights, self.estimate_by, self.flip)

    @property
    def averages_weights(self) -> bool:
        return self.weights == "ema" or self.all_estimators


WEIGHTS = ("final", "ema")


def estimator_name(weights: str, estimate_by: str, flip: bool) -> str:
    return f"{weights}-{estimate_by}" + ("-flip" if flip else "")


PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class ComputeConfig:
    """How the numbers are computed, as far as it changes them: part of a run's identity."""

    # torch intra-op threads on CPU; the summation order (and so every trained weight) depends on it.
    # 0 = leave torch's default, which differs between machines: presets pin it.
    threads: int = 0
    precision: str = "fp32"  # fp32 | bf16 (autocast on the training device)
    channels_last: bool = False  # memory layout of conv activations
    deterministic: bool = False  # deterministic algorithms (cuDNN, cuBLAS workspace) on CUDA
    # Architectures per batched estimation pass; 0 = chosen from free memory, 1 = one at a time (pre-batching numbers).
    estimate_archs: int = 0

    def validate(self) -> None:
        if self.threads < 0:
            raise HarnessError(f"compute.threads={self.threads!r} must be >= 0 (0 = torch's default)")
        if self.precision not in PRECISIONS:
            raise one_of("compute.precision", self.precision, PRECISIONS)
        if self.estimate_archs < 0:
            raise HarnessError(f"compute.estimate_archs={self.estimate_archs!r} must be >= 0 (0 = chosen from free memory)")


@dataclass(frozen=True)
class Config:
    preset: str
    shape: ShapeConfig = field(default_factory=ShapeConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    # Options of each strategy, by strategy name; only the running strategy's entry is used and recorded.
    strategy: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Harness features that are not a strategy (e.g. the disturbance probe) keep their options here.
    features: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SECTIONS = {"shape": ShapeConfig, "data": DataConfig, "train": TrainConfig, "eval": EvalConfig, "compute": ComputeConfig}


def same_config(recorded: dict, current: dict) -> bool:
    """Whether a run's recorded config (Config.to_dict()) is the current one. A setting the record lacks
    was added to the harness after the run started; it matches if the current value is its default."""
    current = json.loads(json.dumps(current))
    for section, cls in SECTIONS.items():
        old, new = recorded.get(section, {}), current.get(section, {})
        for f in dataclasses.fields(cls):
            if f.name not in old and f.name in new and new[f.name] == f.default:
                del new[f.name]
    return recorded == current


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("harness.presets").iterdir() if p.name.endswith(".toml"))


def _read_preset(name: str, space: str | None = None) -> dict:
    # A space may ship its own version of a preset (harness/presets/<space>/<name>.toml): same name, its scale.
    if space and resources.files("harness.presets").joinpath(space, f"{name}.toml").is_file():
        return tomllib.loads(resources.files("harness.presets").joinpath(space, f"{name}.toml").read_text())
    if name not in preset_names():
        raise one_of("preset", name, preset_names())
    return tomllib.loads(resources.files("harness.presets").joinpath(f"{name}.toml").read_text())


def parse_override(text: str) -> tuple[list[str], Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise HarnessError(f"override {text!r} is not of the form section.key=value (e.g. train.epochs=10)")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # bare words are strings: --set shape.bn_mode=running
    return key.strip().split("."), value


def _accepted_types(cls, f: dataclasses.Field) -> tuple[type, ...]:
    """The types a field accepts, from its annotation (so `int | None` fields are checked too)."""
    try:
        hint = typing.get_type_hints(cls)[f.name]
    except Exception:  # noqa: BLE001 - an unresolvable annotation: fall back to the default's type
        hint = type(f.default) if f.default not in (dataclasses.MISSING, None) else object
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    accepted = tuple(a for a in args if isinstance(a, type) and a is not type(None))
    return accepted or (object,)


def _type_error(section: str, key: str, value, accepted: tuple[type, ...]) -> HarnessError:
    names = " or ".join(t.__name__ for t in accepted)
    return HarnessError(f"{section}.{key}={value!r} has type {type(value).__name__}; expected {names}")


def _check_value(section: str, key: str, value, accepted: tuple[type, ...]) -> None:
    if object in accepted:
        return
    # bool is an int subclass: `true` for an integer setting is a mistake, not 1.
    if isinstance(value, bool) and bool not in accepted:
        raise _type_error(section, key, value, accepted)
    ok = isinstance(value, accepted) or (float in accepted and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise _type_error(section, key, value, accepted)
    if isinstance(value, float) and not math.isfinite(value):
        raise HarnessError(f"{section}.{key}={value!r} must be a finite number")


def _build(cls, values, section: str):
    if not isinstance(values, dict):
        raise HarnessError(f"[{section}] is a table of settings, got {values!r}; set its keys instead, e.g. --set {section}.KEY=VALUE")
    names = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key not in names:
            raise one_of(f"key in [{section}]", key, names)
        if isinstance(value, dict):
            raise HarnessError(f"{section}.{key} is a single value, not a table; accepted: --set {section}.{key}=VALUE")
        _check_value(section, key, value, _accepted_types(cls, names[key]))
    obj = cls(**values)
    if hasattr(obj, "validate"):
        obj.validate()
    return obj


def resolve(preset: str, overrides: list[str] | tuple[str, ...] = (), space: str | None = None) -> Config:
    raw = _read_preset(preset, space)
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise HarnessError(f"override {text!r}: {part!r} is a value, not a section")
        node[path[-1]] = value
    accepted = set(SECTIONS) | {"strategy", "features"}
    for section in raw:
        if section not in accepted:
            raise one_of("config section", section, accepted)
    for section in ("strategy", "features"):
        tables = raw.get(section, {})
        if not isinstance(tables, dict):
            raise HarnessError(f"[{section}] is a table of tables, got {tables!r}; accepted: --set {section}.NAME.KEY=VALUE")
        for name, table in tables.items():
            if not isinstance(table, dict):
                raise HarnessError(f"{section}.{name}={table!r} is not a table of options; accepted: --set {section}.{name}.KEY=VALUE")
    built = {name: _build(cls, raw.get(name, {}), name) for name, cls in SECTIONS.items()}
    return Config(preset=preset, strategy=raw.get("strategy", {}), features=raw.get("features", {}), **built)


def check_strategy_overrides(strategy: str, overrides) -> None:
    """Options set on the command line for a strategy that is not the running one would be silently ignored."""
    for text in overrides:
        path, _ = parse_override(text)
        if len(path) >= 2 and path[0] == "strategy" and path[1] != strategy:
            raise HarnessError(
                f"override {text!r} sets options of strategy {path[1]!r}, but this run's strategy is {strategy!r}; accepted: strategy.{strategy}.KEY=VALUE"
            )


def build_options(options_cls, values: dict, strategy: str):
    """A strategy's options dataclass from its config table, with the same one-line validation."""
    return _build(options_cls, dict(values), f"strategy.{strategy}")


def build_feature_options(options_cls, values: dict, feature: str):
    """A run feature's options dataclass from its [features.NAME] table, with the same one-line validation."""
    return _build(options_cls, dict(values), f"features.{feature}")
