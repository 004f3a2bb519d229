"""Sparse Kendall tau and random-K tau: defined under ties, seeded, and what they claim to measure."""
import math

import numpy as np
import pytest
from scipy import stats

from harness.scoring.metrics import random_k_tau, ranking_report, sparse_kendall_tau


def test_sparse_tau_ignores_the_order_of_near_ties_of_the_truth():
    truth = np.array([90.00, 90.03, 91.0, 92.0])
    est = np.array([2.0, 1.0, 3.0, 4.0])  # swaps only the two truths 0.03 points apart
    assert stats.kendalltau(est, truth).statistic < 1
    binned = np.round(truth / 0.1)
    assert sparse_kendall_tau(est, truth) == pytest.approx(stats.kendalltau(est, binned).statistic)
    assert sparse_kendall_tau(est, truth) > stats.kendalltau(est, truth).statistic
    # A swap across bins still counts.
    assert sparse_kendall_tau(np.array([1.0, 2.0, 4.0, 3.0]), truth) < sparse_kendall_tau(est, truth)


def test_sparse_tau_is_undefined_when_every_truth_shares_one_bin():
    assert math.isnan(sparse_kendall_tau(np.array([1.0, 2.0, 3.0]), np.array([90.01, 90.02, 90.03])))
    assert math.isnan(sparse_kendall_tau(np.array([1.0]), np.array([90.0])))
    with pytest.raises(ValueError):
        sparse_kendall_tau(np.array([1.0, 2.0]), np.array([1.0, 2.0]), resolution=0)


def test_random_k_tau_of_all_architectures_is_the_full_tau_and_is_seeded():
    rng = np.random.default_rng(3)
    truth = rng.normal(size=60)
    est = truth + rng.normal(size=60)
    full = stats.kendalltau(est, truth).statistic
    assert random_k_tau(est, truth, 60, draws=5)[0] == pytest.approx(full)
    a, b = random_k_tau(est, truth, 10, seed=1), random_k_tau(est, truth, 10, seed=1)
    assert a == b and a[1] == 200
    assert random_k_tau(est, truth, 10, seed=2)[0] != a[0]
    # Its mean over subsets estimates the full tau (tau-b is nearly unbiased under subsampling without ties).
    assert abs(random_k_tau(est, truth, 20, draws=2000)[0] - full) < 0.03
    assert math.isnan(random_k_tau(est, truth, 61)[0])


def test_random_k_tau_leaves_out_subsets_where_it_is_undefined():
    truth = np.array([1.0] * 8 + [2.0, 3.0])  # most 2-subsets are constant in the truth
    est = np.arange(10.0)
    mean, used = random_k_tau(est, truth, 2, draws=300, seed=0)
    assert 0 < used < 300 and mean == pytest.approx(1.0)


def test_ranking_report_carries_them():
    rng = np.random.default_rng(0)
    truth = rng.uniform(80, 94, size=120)
    report = ranking_report(truth + rng.normal(size=120), truth, 94.4, bootstrap=0)
    for key in ("sparse_kendall_tau", "random_10_tau", "random_20_tau", "random_50_tau", "random_100_tau"):
        assert -1 <= report[key] <= 1, key
    assert report["sparse_resolution"] == 0.1
