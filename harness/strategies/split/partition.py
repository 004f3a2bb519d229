"""Which ops of an edge should stop sharing weights: 2-way partitions of a similarity matrix, and edge choice.

Pure functions of a symmetric op-by-op similarity matrix (gradient cosines for GM-NAS, LID-vector cosines
for NAS-LID), so they can be tested on hand-made matrices.

Partition score (both papers): the sum of similarities of op pairs that stay in the same group. All
balanced 2-way groupings are searched exhaustively (10 groupings of 5 ops into 2 + 3); with the group
sizes fixed, maximising the intra-group sum is the same as minimising the cut (cross-group sum) *within*
one edge. Across edges the two differ, so the edge choice is an explicit rule:

  max_intra  the edge whose best partition has the highest partition score -- NAS-LID's stated rule
             ("select the layer with the highest partition score");
  min_cross  the edge whose best partition has the lowest cut, i.e. separates its ops most -- GM-NAS's
             min-cut rule;
  max_cross  the edge with the *largest* cross-group similarity, what one public NAS-LID implementation
             appears to do. It is not the inverse of max_intra: an edge whose ops are all alike scores high
             on both, and on the recorded mini decisions the two picked the same edge every time -- both
             choose the edge whose ops are most alike, the opposite of GM-NAS's min_cross.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError, one_of

EDGE_RULES = ("max_intra", "min_cross", "max_cross")


@dataclass(frozen=True)
class Partition:
    groups: tuple[tuple[int, ...], tuple[int, ...]]  # positions in the similarity matrix
    intra: float  # sum of similarities of same-group pairs (the partition score)
    cross: float  # sum of similarities of pairs split apart (the cut)


def balanced_bipartitions(n: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Every split of positions 0..n-1 into groups of n//2 and n - n//2, each unordered pair once."""
    if n < 2:
        raise HarnessError(f"cannot split {n} op(s) into two groups; an edge needs at least 2 candidate ops")
    small = n // 2
    out = []
    for group in itertools.combinations(range(n), small):
        if 2 * small == n and 0 not in group:
            continue  # equal halves: (A, B) and (B, A) are the same partition
        rest = tuple(i for i in range(n) if i not in group)
        out.append((group, rest))
    return out


def _check(similarity: np.ndarray) -> np.ndarray:
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise HarnessError(f"similarity matrix must be square, got shape {sim.shape}")
    if not np.all(np.isfinite(sim)):
        raise HarnessError("similarity matrix contains non-finite values")
    return (sim + sim.T) / 2  # estimates are symmetric up to rounding; average so order never matters


def score(similarity: np.ndarray, groups) -> Partition:
    sim = _check(similarity)
    label = np.empty(len(sim), dtype=np.int64)
    for g, members in enumerate(groups):
        label[list(members)] = g
    iu = np.triu_indices(len(sim), k=1)
    same = label[iu[0]] == label[iu[1]]
    pairs = sim[iu]
    return Partition(tuple(tuple(g) for g in groups), float(pairs[same].sum()), float(pairs[~same].sum()))


def best_partition(similarity: np.ndarray) -> Partition:
    """The balanced 2-way grouping with the highest intra-group similarity (first in enumeration order on ties)."""
    sim = _check(similarity)
    best: Partition | None = None
    for groups in balanced_bipartitions(len(sim)):
        candidate = score(sim, groups)
        if best is None or candidate.intra > best.intra:
            best = candidate
    assert best is not None
    return best


def choose_edge(partitions: dict[int, Partition], rule: str) -> int:
    """The edge to split among `partitions` (edge -> its best partition); lowest edge index on ties."""
    if rule not in EDGE_RULES:
        raise one_of("edge rule", rule, EDGE_RULES)
    if not partitions:
        raise HarnessError("no unsplit edge is left to split; use fewer split levels")
    key = {
        "max_intra": lambda e: (-partitions[e].intra, e),
        "min_cross": lambda e: (partitions[e].cross, e),
        "max_cross": lambda e: (-partitions[e].cross, e),
    }[rule]
    return min(partitions, key=key)
