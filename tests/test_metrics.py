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


# ---- ties and NaN: exact expectations over uniformly random tie-breaking, NaN last ----------------------------
def test_all_tied_estimates_give_the_mean_regret_not_an_index_order_one():
    truth = np.array([90.0, 94.0, 92.0, 90.0])
    est = np.full(4, 0.5)
    # each of the 4 equally likely to be picked: optimum 94 - mean truth 91.5
    assert m.regret(est, truth, 94.0) == pytest.approx(2.5)
    assert m.regret(est, truth[::-1].copy(), 94.0) == pytest.approx(2.5)  # index order does not matter
    # two tied at the top: mean of their truths
    assert m.regret(np.array([1.0, 3.0, 3.0, 2.0]), truth, 94.0) == pytest.approx(94 - (94 + 92) / 2)


def test_nan_estimate_is_never_the_predicted_best_and_is_counted():
    truth = np.array([90.0, 94.0, 92.0])
    est = np.array([0.1, math.nan, 0.2])
    assert int(np.argmax(est)) == 1  # what numpy would have picked
    assert m.regret(est, truth, 94.0) == pytest.approx(2.0)  # the 0.2 one, truth 92
    assert m.regret(np.full(3, math.nan), truth, 94.0) == pytest.approx(94 - 92)  # all NaN: all tied
    report = m.ranking_report(est, truth, optimum=94.0, bootstrap=0)
    assert report["num_nan_estimates"] == 1 and report["predicted_best_truth"] == 92.0
    # NaN ranks last: tau as if it were the smallest estimate
    assert report["kendall_tau"] == pytest.approx(m.kendall_tau(np.array([0.1, -5.0, 0.2]), truth))
    assert report["spearman_rho"] == pytest.approx(m.spearman_rho(np.array([0.1, -5.0, 0.2]), truth))
    assert math.isnan(report["pearson_r"])
    assert m.ranking_report([1.0, 2.0, 3.0], truth, 94.0, bootstrap=0)["num_nan_estimates"] == 0


def test_precision_at_k_under_ties_by_hand():
    truth = np.array([10, 9, 8, 7, 6.0])  # true top-2: {0, 1}
    # est: 0 clearly first; 1, 2, 3 tied for the second place: P(1 chosen) = 1/3
    est = np.array([5, 1, 1, 1, 0.0])
    assert m.precision_at_k(est, truth, 2) == pytest.approx((1 + 1 / 3) / 2)
    # all tied: each of the 5 in the predicted top-2 with probability 2/5; 2 true-top members -> 2 * 2/5 / 2
    assert m.precision_at_k(np.zeros(5), truth, 2) == pytest.approx(0.4)
    # ties in the truth are random too: truth 3 tied for the top 2, est picks 0 and 1 for sure
    assert m.precision_at_k(np.array([9, 8, 1, 0, 0.0]), np.array([5, 5, 5, 1, 0.0]), 2) == pytest.approx((2 / 3 + 2 / 3) / 2)
    # NaN last: 1 with NaN never beats the others for the top-1
    assert m.precision_at_k(np.array([0.0, math.nan, 1.0, 2.0, 3.0]), truth, 1) == 0.0
    assert m.precision_at_k(np.array([-1.0, math.nan, -2.0, -3.0, -4.0]), truth, 1) == 1.0


def test_top_k_inclusion_probabilities():
    p = m.top_k_inclusion(np.array([3.0, 2.0, 2.0, 2.0, 1.0, math.nan]), 3)
    assert p.tolist() == pytest.approx([1, 2 / 3, 2 / 3, 2 / 3, 0, 0])
    assert m.top_k_inclusion(np.array([1.0, math.nan, math.nan]), 2).tolist() == pytest.approx([1, 0.5, 0.5])


def test_best_true_rank_under_ties_by_hand():
    truth = np.array([10, 9, 8, 7, 6.0])  # true ranks 1..5
    # all tied, top-1: the rank of a uniformly random architecture, (1+2+3+4+5)/5
    assert m.best_true_rank_in_top_k(np.zeros(5), truth, 1) == pytest.approx(3.0)
    # all tied, top-2: min of 2 drawn from 5; P(min=1)=4/10, 2: 3/10, 3: 2/10, 4: 1/10 -> 2.0
    assert m.best_true_rank_in_top_k(np.zeros(5), truth, 2) == pytest.approx(2.0)
    # one sure pick (rank 3) plus one of {ranks 1, 2, 4} tied: min(3, r) over r uniform -> (1 + 2 + 3) / 3
    assert m.best_true_rank_in_top_k(np.array([1, 1, 5, 1, 0.0]), truth, 2) == pytest.approx(2.0)
    # tied truths share the better rank: 1 + number strictly better
    assert m.true_ranks(np.array([5.0, 7.0, 5.0, 1.0])).tolist() == [2, 1, 2, 4]
    # NaN last: the NaN one (true rank 1) is picked only when the top-k reaches it
    est = np.array([math.nan, 1.0, 2.0, 3.0, 4.0])
    assert m.best_true_rank_in_top_k(est, truth, 4) == 2 and m.best_true_rank_in_top_k(est, truth, 5) == 1


def test_regret_and_best_rank_match_an_exhaustive_enumeration_of_tie_breaks():
    import itertools

    rng = np.random.default_rng(5)
    for trial in range(20):
        est = rng.integers(0, 3, 6).astype(float)
        if trial % 3 == 0:
            est[rng.integers(0, 6)] = math.nan
        truth = rng.integers(0, 4, 6).astype(float)
        e = m.ranked(est)
        ranks = m.true_ranks(truth)
        regrets, best_ranks = [], {k: [] for k in (1, 2, 3)}
        for perm in itertools.permutations(range(6)):  # every tie-break order of the estimate
            order = sorted(range(6), key=lambda i: (-e[i], perm[i]))
            regrets.append(10 - truth[order[0]])
            for k in (1, 2, 3):
                best_ranks[k].append(ranks[order[:k]].min())
        assert m.regret(est, truth, 10) == pytest.approx(np.mean(regrets))
        for k in (1, 2, 3):
            assert m.best_true_rank_in_top_k(est, truth, k) == pytest.approx(np.mean(best_ranks[k]))


def test_precision_expectation_matches_enumerating_independent_tie_breaks_of_estimate_and_truth():
    import itertools

    rng = np.random.default_rng(6)
    perms = list(itertools.permutations(range(5)))
    for trial in range(4):
        est = rng.integers(0, 2, 5).astype(float)
        est[trial] = math.nan
        truth = rng.integers(0, 3, 5).astype(float)
        e = m.ranked(est)
        pred_tops = [sorted(range(5), key=lambda i: (-e[i], p[i])) for p in perms]
        true_tops = [sorted(range(5), key=lambda i: (-truth[i], p[i])) for p in perms]
        for k in (1, 2, 3):
            pred = [set(o[:k]) for o in pred_tops]
            true = [set(o[:k]) for o in true_tops]
            expected = np.mean([len(a & b) / k for a in pred for b in true])
            assert m.precision_at_k(est, truth, k) == pytest.approx(expected)
