import math

import numpy as np
import pytest

from harness.scoring import metrics as m


def test_kendall_tau_hand_computed():
    # est: 1 2 3 4, truth: 1 3 2 4 -> pairs: 6, discordant: (2,3) only -> (5 - 1) / 6
    assert m.kendall_tau(np.array([1, 2, 3, 4.0]), np.array([1, 3, 2, 4.0])) == pytest.approx(4 / 6)
    assert m.kendall_tau(np.array([1, 2, 3.0]), np.array([3, 2, 1.0])) == pytest.approx(-1)


def test_spearman_and_pearson_hand_computed():
    est = np.array([1, 2, 3, 4, 5.0])
    truth = np.array([2, 1, 4, 3, 5.0])
    # d = (-1, 1, -1, 1, 0): rho = 1 - 6 * 4 / (5 * 24) = 0.8
    assert m.spearman_rho(est, truth) == pytest.approx(0.8)
    assert m.pearson_r(est, truth) == pytest.approx(0.8)
    assert math.isnan(m.pearson_r(np.ones(5), truth))


def test_top_fraction_tau_uses_the_true_top():
    truth = np.arange(100, dtype=float)
    est = truth.copy()
    est[-5:] = est[-5:][::-1]  # the true top 5 are predicted in reverse order
    tau, n = m.top_fraction_tau(est, truth, 0.05)
    assert n == 5 and tau == pytest.approx(-1)
    assert m.top_fraction_rho(est, truth, 0.05) == (pytest.approx(-1), 5)
    assert m.kendall_tau(est, truth) > 0.9
    tau, n = m.top_fraction_tau(est, truth, 0.005)  # 0.5 of one architecture -> floor -> 0 -> undefined
    assert n == 0 and math.isnan(tau)


def test_top_fraction_sizes_are_the_literatures_floors():
    # NB201's whole space: 15,625 x 0.2% = 31.25 -> 31, x 0.5% = 78.125 -> 78, x 1% = 156.25 -> 156.
    assert [m.top_fraction_size(f, 15625) for f in (0.002, 0.005, 0.01, 0.05)] == [31, 78, 156, 781]
    # mini's 500: 1.0 -> 1, 2.5 -> 2, 5.0 -> 5, 25.0 -> 25 (whole products must not floor one below).
    assert [m.top_fraction_size(f, 500) for f in (0.002, 0.005, 0.01, 0.05)] == [1, 2, 5, 25]
    assert m.top_fraction_size(0.01, 6466) == 64  # de-isomorphic NB201: 64.66 -> 64


def test_report_has_tau_rho_and_sizes_of_every_top_subset():
    truth = np.arange(1000, dtype=float)
    est = truth.copy()
    est[-10:] = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0.0]) + 990  # top 1% (10) reversed
    est[-5:] = est[-5:][[1, 0, 2, 3, 4]]  # ...and within the top 0.5% (5): one adjacent swap of the reversal
    report = m.ranking_report(est, truth, optimum=999, bootstrap=0)
    assert (report["n_top0.2pct"], report["n_top0.5pct"], report["n_top1pct"], report["n_top5pct"]) == (2, 5, 10, 50)
    # top 1% = truth 990..999, est ranks 10 9 8 7 6 4 5 3 2 1: one concordant pair of 45,
    # rank differences -9 -7 -5 -3 -1 2 2 5 7 9 (squares sum to 328).
    assert report["kendall_tau_top1pct"] == pytest.approx((1 - 44) / 45)
    assert report["spearman_rho_top1pct"] == pytest.approx(1 - 6 * 328 / (10 * 99))
    # top 0.5% = truth 995..999, est ranks 4 5 3 2 1: 1 concordant, 9 discordant; differences -3 -3 0 2 4.
    assert report["kendall_tau_top0.5pct"] == pytest.approx(-0.8)
    assert report["spearman_rho_top0.5pct"] == pytest.approx(1 - 6 * 38 / (5 * 24))
    assert report["kendall_tau_top5pct"] > 0.5  # the other 40 of the top 50 are in order


def test_precision_at_k_and_best_true_rank():
    truth = np.array([10, 9, 8, 7, 6, 5.0])
    est = np.array([1, 6, 5, 4, 3, 2.0])  # predicted order: 1, 2, 3, 4, 5, 0
    assert m.precision_at_k(est, truth, 2) == pytest.approx(0.5)  # {1,2} vs {0,1}
    assert m.best_true_rank_in_top_k(est, truth, 2) == 2
    assert m.best_true_rank_in_top_k(est, truth, 6) == 1


def test_regret_is_optimum_minus_truth_of_predicted_best():
    truth = np.array([90.0, 93.0, 91.0])
    est = np.array([0.1, 0.2, 0.9])
    assert m.regret(est, truth, 94.37) == pytest.approx(94.37 - 91.0)


def test_bootstrap_interval_contains_the_point_estimate_and_is_seeded():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=200)
    est = truth + rng.normal(scale=1.0, size=200)
    lo, hi = m.bootstrap_tau_ci(est, truth, 300, seed=1)
    assert lo < m.kendall_tau(est, truth) < hi
    assert (lo, hi) == m.bootstrap_tau_ci(est, truth, 300, seed=1)


def test_deisomorphic_subset_keeps_first_member_of_each_class():
    keep = m.first_of_each_class(["a", "b", "a", "c", "b"])
    assert keep.tolist() == [0, 1, 3]
    report = m.ranking_report([1, 2, 3, 4, 5], [1, 2, 0, 4, 5], optimum=5, classes=["a", "b", "a", "c", "d"], bootstrap=20)
    assert report["num_archs_deisomorphic"] == 4
    assert report["kendall_tau_deisomorphic"] == pytest.approx(1.0)
    assert report["regret"] == 0 and report["num_archs"] == 5


def test_report_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        m.ranking_report([1, 2], [1, 2, 3], optimum=3)
