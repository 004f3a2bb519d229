"""The one rule by which every default is chosen: on probe architectures of tuning seeds, the incumbent stays
unless a candidate's probe tau is higher on every tuning seed the two share; among such candidates the highest
mean wins. (A higher mean alone is too easily one seed's noise at a handful of seeds.)"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from harness.errors import HarnessError


def higher_on_every_seed(taus: Mapping[int, float], incumbent: Mapping[int, float]) -> bool:
    """Whether `taus` (seed -> probe tau) is above the incumbent's on every seed both have (and they share one)."""
    shared = set(taus) & set(incumbent)
    return bool(shared) and all(taus[s] > incumbent[s] for s in shared)


def choose(incumbent: str, taus: Mapping[str, Mapping[int, float]], not_candidates: Iterable[str] = ()) -> tuple[str, list[str]]:
    """(choice, the arms higher than the incumbent on every shared seed, candidates or not). `taus` maps each
    arm, the incumbent included, to its probe tau per tuning seed; arms in `not_candidates` are never chosen."""
    if incumbent not in taus:
        raise HarnessError(f"incumbent {incumbent!r} has no probe taus; accepted: one of {', '.join(taus) or 'none'}")
    better = [arm for arm, mine in taus.items() if arm != incumbent and higher_on_every_seed(mine, taus[incumbent])]
    excluded = set(not_candidates)
    candidates = [arm for arm in better if arm not in excluded]
    if not candidates:
        return incumbent, better
    return max(candidates, key=lambda arm: float(np.mean(list(taus[arm].values())))), better
