"""Which architectures a run scores, and the probe architectures settings are chosen on.

The space is split once, by a fixed and recorded seed (`eval.split_seed`), into a scored half and a probe
half at the level of function classes: architectures that compute the same function (NB201's `strict`
isomorphism rule; NB101's graph hash) always land in the same half. Each class goes to either half with the
same chance whatever its size or accuracy, and both sets are drawn the same way (distinct classes uniformly,
one member each), so scored and probe architectures come from the same population, no probe ever computes
the same function as a scored architecture, and no two scored architectures compute the same function.
Settings tuned on probes therefore never see the scored set's ground truth (not even through a duplicate),
and what they learn transfers to the scored population.

`eval.num_archs = 0` scores the whole space (no split, no probes): the full-space presets compare with
published numbers.

Seeds are split the same way once for all: settings are chosen (and controls calibrated) on tuning seeds,
`TUNING_SEEDS_FROM` and above; verdicts, tables and the gate's baseline use the seeds below.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from harness.errors import HarnessError

# Part of every result's record (config.json -> eval.split_seed, metrics.json -> arch_split).
DEFAULT_SPLIT_SEED = 0
# Verdict seeds are 0..99; tuning studies, calibration and the gate's fresh-seed check use 100 and above.
TUNING_SEEDS_FROM = 100


@dataclass(frozen=True)
class ArchSplit:
    """Function classes of each half; a class's members are benchmark rows."""

    seed: int
    rule: str
    classes: np.ndarray  # class id of every benchmark row
    scored_classes: np.ndarray
    probe_classes: np.ndarray

    @property
    def scored(self) -> np.ndarray:
        """Benchmark rows in the scored half, in index order."""
        return np.flatnonzero(np.isin(self.classes, self.scored_classes))

    @property
    def probe(self) -> np.ndarray:
        return np.flatnonzero(np.isin(self.classes, self.probe_classes))

    @property
    def num_classes(self) -> int:
        return int(len(self.scored_classes) + len(self.probe_classes))

    def describe(self) -> dict:
        return {
            "seed": self.seed,
            "rule": self.rule,
            "draw": "uniform over function classes, one member each",
            "function_classes": self.num_classes,
            "scored_half_classes": int(len(self.scored_classes)),
            "probe_half_classes": int(len(self.probe_classes)),
        }

    def draw(self, half: np.ndarray, count: int, seed: int) -> np.ndarray:
        """`count` distinct classes of `half`, uniformly, and one uniformly chosen member of each: benchmark rows
        in index order. Uniform over classes, not rows: a few classes hold hundreds of cells (341 cells compute
        the constant zero), so a row-uniform draw from a class-split half would depend on which half got them."""
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(half, size=count, replace=False))
        order = np.argsort(self.classes, kind="stable")
        starts = np.searchsorted(self.classes[order], chosen)
        sizes = np.searchsorted(self.classes[order], chosen, side="right") - starts
        return np.sort(order[starts + (rng.random(count) * sizes).astype(np.int64)])


def function_classes(space, gt) -> np.ndarray:
    """Class id of every benchmark row (ids number the sorted class keys, so they depend on nothing else)."""
    cache = gt.__dict__.setdefault("_function_classes", {})
    if space.name not in cache:
        keys = [space.function_class(gt.arch_of(i)) for i in range(len(gt.table))]
        _, ids = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
        cache[space.name] = ids.astype(np.int64)
    return cache[space.name]


def arch_split(space, gt, split_seed: int = DEFAULT_SPLIT_SEED) -> ArchSplit:
    """Half the function classes (a permutation by `split_seed`, first half) are scored, the rest probes."""
    cache = gt.__dict__.setdefault("_arch_splits", {})
    key = (space.name, int(split_seed))
    if key not in cache:
        ids = function_classes(space, gt)
        num_classes = int(ids.max()) + 1 if len(ids) else 0
        order = np.random.default_rng(int(split_seed)).permutation(num_classes)
        cut = num_classes // 2 + num_classes % 2
        cache[key] = ArchSplit(int(split_seed), space.function_rule, ids, np.sort(order[:cut]), np.sort(order[cut:]))
    return cache[key]


def check_counts(space, gt, num_archs: int, probe_archs: int, split_seed: int = DEFAULT_SPLIT_SEED) -> None:
    """One-line errors for counts the halves cannot hold, before any run starts work."""
    if num_archs == 0:
        if probe_archs:
            raise HarnessError(
                f"eval.probe_archs={probe_archs} needs eval.num_archs > 0: num_archs=0 scores the whole space, leaving no probe half"
            )
        return
    split = arch_split(space, gt, split_seed)
    if num_archs > len(split.scored_classes):
        raise HarnessError(
            f"eval.num_archs={num_archs} exceeds the scored half ({len(split.scored_classes)} function classes, split_seed "
            f"{split_seed}); accepted 2..{len(split.scored_classes)}, or 0 for the whole space"
        )
    if probe_archs > len(split.probe_classes):
        raise HarnessError(
            f"eval.probe_archs={probe_archs} exceeds the probe half ({len(split.probe_classes)} function classes, split_seed "
            f"{split_seed}); accepted 0 or 2..{len(split.probe_classes)}"
        )


def scored_archs(space, gt, num_archs: int, arch_seed: int, split_seed: int = DEFAULT_SPLIT_SEED) -> list:
    """The architectures every run of this eval config scores: `num_archs` distinct function classes of the
    scored half (`num_archs = 0`: every architecture of the space), in benchmark-index order."""
    if num_archs == 0:
        return [gt.arch_of(i) for i in range(len(gt.table))]
    check_counts(space, gt, num_archs, 0, split_seed)
    split = arch_split(space, gt, split_seed)
    return [gt.arch_of(int(i)) for i in split.draw(split.scored_classes, num_archs, arch_seed)]


def probe_archs(space, gt, count: int, probe_seed: int, split_seed: int = DEFAULT_SPLIT_SEED) -> list:
    """`count` distinct function classes of the probe half, drawn as the scored set is, in benchmark-index order."""
    if count == 0:
        return []
    check_counts(space, gt, 2, count, split_seed)
    split = arch_split(space, gt, split_seed)
    return [gt.arch_of(int(i)) for i in split.draw(split.probe_classes, count, probe_seed)]


def disjoint_archs(space, gt, count: int, seed: int, excluded: Sequence[Any], what: str = "probe set") -> list:
    """`count` architectures, distinct up to isomorphism and function, none sharing either with an excluded one."""

    def forms_of(arch) -> set:
        return {("isomorphism", space.canonical_form(arch)), ("function", space.function_class(arch))}

    taken = set().union(*(forms_of(a) for a in excluded))
    rng = np.random.default_rng(seed)
    chosen = []
    for index in rng.permutation(len(gt.table)):
        arch = gt.arch_of(int(index))
        forms = forms_of(arch)
        if not forms & taken:
            taken |= forms
            chosen.append(arch)
            if len(chosen) == count:
                return chosen
    raise HarnessError(f"{what} of {count} architectures exceeds the architectures left outside the scored set")
