"""Which architectures a run scores, and probe sets kept apart from them.

The scored set is what every reported metric is computed on. A probe set is disjoint from it up to
isomorphism, so settings may be chosen on the probes' ground truth without ever looking at the scored one.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from harness.errors import HarnessError
from harness.scoring.groundtruth import GroundTruth


def scored_archs(space, gt: GroundTruth, num_archs: int, arch_seed: int) -> list:
    """The architectures every run of this eval config scores, in benchmark-index order."""
    total = len(gt.table)
    if num_archs == 0 or num_archs >= total:
        indices = np.arange(total)
    else:
        indices = np.sort(np.random.default_rng(arch_seed).choice(total, size=num_archs, replace=False))
    return [gt.arch_of(int(i)) for i in indices]


def disjoint_archs(space, gt: GroundTruth, count: int, seed: int, excluded: Sequence[Any], what: str = "probe set") -> list:
    """`count` architectures, distinct up to isomorphism, none of them isomorphic to an excluded one."""
    taken = {space.canonical_form(a) for a in excluded}
    rng = np.random.default_rng(seed)
    chosen = []
    for index in rng.permutation(len(gt.table)):
        arch = gt.arch_of(int(index))
        form = space.canonical_form(arch)
        if form not in taken:
            taken.add(form)
            chosen.append(arch)
            if len(chosen) == count:
                return chosen
    raise HarnessError(f"{what} of {count} architectures exceeds the architectures left outside the scored set")
