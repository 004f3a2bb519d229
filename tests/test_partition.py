import numpy as np
import pytest

from harness.errors import HarnessError
from harness.strategies.split.partition import balanced_bipartitions, best_partition, choose_edge, score


def planted(groups, within=0.9, across=0.1, noise=0.02, seed=0) -> np.ndarray:
    n = sum(len(g) for g in groups)
    label = np.empty(n, dtype=int)
    for i, g in enumerate(groups):
        label[list(g)] = i
    sim = np.where(label[:, None] == label[None, :], within, across)
    sim = sim + np.random.default_rng(seed).uniform(-noise, noise, (n, n))
    sim = (sim + sim.T) / 2
    np.fill_diagonal(sim, 1.0)
    return sim


def test_five_ops_have_ten_two_vs_three_groupings_each_once():
    parts = balanced_bipartitions(5)
    assert len(parts) == 10
    assert all(len(a) == 2 and len(b) == 3 and sorted(a + b) == list(range(5)) for a, b in parts)
    assert len({frozenset(a) for a, _ in parts}) == 10
    even = balanced_bipartitions(4)  # (A, B) and (B, A) are one partition
    assert len(even) == 3


@pytest.mark.parametrize("groups", [((0, 3), (1, 2, 4)), ((1, 4), (0, 2, 3)), ((2, 3), (0, 1, 4))])
def test_best_partition_finds_the_planted_grouping(groups):
    found = best_partition(planted(groups))
    assert {frozenset(g) for g in found.groups} == {frozenset(g) for g in groups}


def test_intra_and_cross_sum_the_pairs():
    sim = planted(((0, 1), (2, 3, 4)), noise=0)
    p = score(sim, ((0, 1), (2, 3, 4)))
    assert p.intra == pytest.approx(4 * 0.9)  # 1 + 3 same-group pairs
    assert p.cross == pytest.approx(6 * 0.1)
    assert p.intra + p.cross == pytest.approx(sim[np.triu_indices(5, 1)].sum())


def test_edge_rules():
    # edge 1 separates its groups most (lowest cut); edge 2 has the most similar ops overall, so the highest
    # intra score *and* the highest cut; edge 0 is in between.
    partitions = {
        0: best_partition(planted(((0, 1), (2, 3, 4)), within=0.8, across=0.4)),
        1: best_partition(planted(((0, 1), (2, 3, 4)), within=0.7, across=0.0)),
        2: best_partition(planted(((0, 1), (2, 3, 4)), within=0.95, across=0.6)),
    }
    assert choose_edge(partitions, "min_cross") == 1
    assert choose_edge(partitions, "max_intra") == 2
    assert choose_edge(partitions, "max_cross") == 2
    tie = {3: partitions[0], 5: partitions[0]}
    assert choose_edge(tie, "min_cross") == 3


def test_bad_input_is_one_line():
    with pytest.raises(HarnessError, match="accepted: max_cross, max_intra, min_cross"):
        choose_edge({0: best_partition(planted(((0,), (1,))))}, "largest")
    with pytest.raises(HarnessError, match="square"):
        best_partition(np.ones((2, 3)))
    with pytest.raises(HarnessError, match="at least 2"):
        balanced_bipartitions(1)
