"""The scored/probe split: whole function classes per half, a function of its seed only, one population."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness.errors import HarnessError
from harness.registry import SPACES
from harness.scoring.archsets import arch_split, check_counts, disjoint_archs, function_classes, probe_archs, scored_archs
from harness.scoring.groundtruth import GroundTruth
from harness.spaces.nb201.isomorphism import canonical_form

NB201 = SPACES.get("nb201")()


def test_no_probe_computes_the_same_function_as_a_scored_arch(ground_truth):
    # mini's counts (500 scored, 200 probes) and the halves themselves.
    scored = scored_archs(NB201, ground_truth, 500, 0)
    probes = probe_archs(NB201, ground_truth, 200, 1)
    assert len(scored) == 500 and len(probes) == 200
    assert not {canonical_form(a, "strict") for a in scored} & {canonical_form(a, "strict") for a in probes}
    # No two scored architectures compute the same function either.
    assert len({canonical_form(a, "strict") for a in scored}) == 500
    split = arch_split(NB201, ground_truth, 0)
    ids = function_classes(NB201, ground_truth)
    assert not set(ids[split.scored]) & set(ids[split.probe])
    assert len(split.scored) + len(split.probe) == len(ground_truth.table) == 15625
    assert split.num_classes == 4930
    # Every class is whole and in one half.
    assert sorted(np.concatenate([split.scored, split.probe]).tolist()) == list(range(15625))


def test_classes_are_strict_isomorphism_classes(ground_truth):
    ids = function_classes(NB201, ground_truth)
    forms = [canonical_form(ground_truth.arch_of(i), "strict") for i in range(0, 15625, 7)]
    rows = list(range(0, 15625, 7))
    for a, fa in zip(rows[:300], forms[:300]):
        for b, fb in zip(rows[:300], forms[:300]):
            assert (ids[a] == ids[b]) == (fa == fb)


def test_split_is_a_function_of_its_seed_only(ground_truth):
    split = arch_split(NB201, ground_truth, 0)
    # Another table holding the same architectures in another row order splits them the same way.
    order = np.random.default_rng(5).permutation(len(ground_truth.table))
    shuffled = ground_truth.table.iloc[order].reset_index(drop=True)
    shuffled["index"] = np.arange(len(shuffled))
    other = GroundTruth(shuffled, ground_truth.path)
    other_split = arch_split(NB201, other, 0)
    names = lambda gt, rows: {str(gt.arch_of(int(i))) for i in rows}  # noqa: E731
    assert names(ground_truth, split.scored) == names(other, other_split.scored)
    # The draws of the scored set do not move the halves; another split seed does.
    assert {str(a) for a in scored_archs(NB201, ground_truth, 300, 7)} <= names(ground_truth, split.scored)
    assert names(ground_truth, arch_split(NB201, ground_truth, 1).scored) != names(ground_truth, split.scored)


def test_halves_come_from_the_same_population(ground_truth):
    split = arch_split(NB201, ground_truth, 0)
    ids = function_classes(NB201, ground_truth)
    truth = ground_truth.table["cifar10_test"].to_numpy()
    class_truth = np.bincount(ids, weights=truth) / np.bincount(ids)
    assert stats.ks_2samp(class_truth[split.scored_classes], class_truth[split.probe_classes]).pvalue > 0.05
    # Classes of several members are no rarer in one half than in the other.
    multi = np.bincount(ids) > 1
    assert abs(multi[split.scored_classes].mean() - multi[split.probe_classes].mean()) < 0.03
    # The drawn sets too (mini's 500 vs 200).
    scored = ground_truth.values(scored_archs(NB201, ground_truth, 500, 0), "cifar10_test")
    probes = ground_truth.values(probe_archs(NB201, ground_truth, 200, 1), "cifar10_test")
    assert stats.ks_2samp(scored, probes).pvalue > 0.05


def test_whole_space_and_counts_beyond_a_half(ground_truth):
    assert len(scored_archs(NB201, ground_truth, 0, 0)) == 15625
    half = len(arch_split(NB201, ground_truth, 0).scored_classes)
    assert half == 2465
    with pytest.raises(HarnessError, match="eval.num_archs=2466 exceeds the scored half"):
        check_counts(NB201, ground_truth, 2466, 0, 0)
    with pytest.raises(HarnessError, match="eval.probe_archs=2466 exceeds the probe half"):
        check_counts(NB201, ground_truth, 20, 2466, 0)
    with pytest.raises(HarnessError, match="needs eval.num_archs > 0"):
        check_counts(NB201, ground_truth, 0, 200, 0)
    check_counts(NB201, ground_truth, half, 200, 0)


def test_disjoint_archs_avoid_scored_functions(ground_truth):
    scored = scored_archs(NB201, ground_truth, 200, 0)
    extra = disjoint_archs(NB201, ground_truth, 100, 3, scored)
    assert not {canonical_form(a, "strict") for a in scored} & {canonical_form(a, "strict") for a in extra}


def test_nb101_splits_by_graph_hash():
    from harness.spaces.nb101.groundtruth import NB101GroundTruth

    space = SPACES.get("nb101")()
    from harness.spaces.nb101.cell import Cell

    cells = ["010001000|input,conv3x3-bn-relu,output", "010001000|input,conv1x1-bn-relu,output",
             "010001000|input,maxpool3x3,output", "011001000|input,conv3x3-bn-relu,output"]
    parsed = [Cell.parse(c) for c in cells]
    table = pd.DataFrame({"index": range(4), "arch": [str(c) for c in parsed], "hash": [c.hash for c in parsed],
                          "runs": 3, "nb101_val": [90.0, 91.0, 85.0, 92.0], "params": 1})
    gt = NB101GroundTruth(table, "nb101.csv")
    split = arch_split(space, gt, 0)
    assert split.rule == "nb101 graph hash" and split.num_classes == 4
    assert len(split.scored_classes) == len(split.probe_classes) == 2
    assert {str(a) for a in scored_archs(space, gt, 2, 0)}.isdisjoint({str(a) for a in probe_archs(space, gt, 2, 0)})
