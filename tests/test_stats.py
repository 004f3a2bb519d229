"""Paired statistics against cases computable by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from harness.scoring import stats
from harness.errors import HarnessError


def test_t_interval_of_one_two_three():
    mean, lo, hi = stats.t_interval([1.0, 2.0, 3.0])
    # sd 1, n 3, t_{0.975, 2} = 4.302653
    assert mean == 2.0 and hi - mean == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6) and mean - lo == pytest.approx(hi - mean)
    single = stats.t_interval([0.4])
    assert single[0] == 0.4 and math.isnan(single[1]) and math.isnan(single[2])
    with pytest.raises(HarnessError, match="non-finite"):
        stats.t_interval([0.1, math.nan])


def test_paired_differences_need_equal_lengths():
    assert stats.paired_differences([0.5, 0.25], [0.25, 0.5]).tolist() == [0.25, -0.25]
    with pytest.raises(HarnessError, match="equal lengths"):
        stats.paired_differences([1.0], [1.0, 2.0])


def test_exact_sign_flip_enumerates_all_patterns():
    # +-1 +-2 +-3: |sum| >= 6 in 2 of 8 patterns
    assert stats.sign_flip_p([1.0, 2.0, 3.0]) == 0.25
    assert stats.sign_flip_p([-1.0, -2.0, -3.0]) == 0.25
    # 5 equal-signed seeds: the smallest p five seeds can give
    assert stats.sign_flip_p([0.1, 0.2, 0.05, 0.3, 0.15]) == pytest.approx(2 / 32)
    assert stats.sign_flip_p([0.5, 0.5]) == 0.5
    assert stats.sign_flip_p([1.0, -1.0]) == 1.0
    # observed 3 - 1 + 1 ... |+-3 +-1 +-1| >= 3 except the two patterns summing to +-1
    assert stats.sign_flip_p([3.0, 1.0, -1.0]) == pytest.approx(6 / 8)
    assert math.isnan(stats.sign_flip_p([]))


def test_monte_carlo_sign_flip_above_twenty_seeds_is_close_to_exact_logic():
    d = np.full(24, 0.1)
    p = stats.sign_flip_p(d, resamples=20000, seed=1)
    assert p < 0.001  # exact value 2 / 2^24; the estimate is bounded below by 1 / (resamples + 1)
    noise = np.random.default_rng(0).normal(size=24)
    assert 0.05 < stats.sign_flip_p(noise - noise.mean(), resamples=20000) <= 1.0


def test_percentile_bootstrap_over_seeds_is_gone():
    assert not hasattr(stats, "bootstrap_mean_interval")


def test_paired_t_test_equals_scipy_ttest_rel():
    rng = np.random.default_rng(4)
    for n in (2, 3, 5, 10):
        a, b = rng.normal(0.3, 0.05, n), rng.normal(0.25, 0.05, n)
        ref = sps.ttest_rel(a, b)
        test = stats.paired_t_test(a - b)
        assert test.p == pytest.approx(ref.pvalue, rel=1e-10)
        assert (test.low, test.high) == pytest.approx(tuple(ref.confidence_interval()), rel=1e-10)
        assert test.df == n - 1 and test.t == pytest.approx(ref.statistic)
        # one statistic: the interval excludes 0 exactly when p < 0.05
        assert (test.low > 0 or test.high < 0) == (test.p < 0.05)
    # the smoke case: params - ws = +0.761 / +0.678 / +0.694
    d = [0.761484, 0.677791, 0.694208]
    test = stats.paired_t_test(d)
    assert test.p == pytest.approx(0.00129, abs=2e-5) and (test.low, test.high) == pytest.approx((0.601, 0.821), abs=1e-3)
    assert math.isnan(stats.paired_t_test([0.1]).p) and math.isnan(stats.paired_t_test([]).mean)
    constant = stats.paired_t_test([0.5, 0.5, 0.5])
    assert constant.p == 0.0 and constant.low == constant.high == 0.5


def test_two_source_test_adds_the_architecture_variance_with_welch_satterthwaite_df():
    d = np.array([0.02, -0.01, 0.04, 0.00, 0.03])
    seed_var = d.var(ddof=1) / 5
    test = stats.two_source_t_test(d, arch_variance=seed_var, arch_df=499)
    assert test.se == pytest.approx(math.sqrt(2 * seed_var))
    assert test.df == pytest.approx((2 * seed_var) ** 2 / (seed_var ** 2 / 4 + seed_var ** 2 / 499))
    half = sps.t.ppf(0.975, test.df) * test.se
    assert (test.low, test.high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert test.p == pytest.approx(2 * sps.t.sf(d.mean() / test.se, test.df))
    same = stats.two_source_t_test(d, 0.0, 499)
    assert (same.low, same.high, same.p) == pytest.approx((stats.paired_t_test(d).low, stats.paired_t_test(d).high, stats.paired_t_test(d).p))
    assert stats.welch_satterthwaite_df([1.0, 0.0], [4, 10]) == pytest.approx(4)


def test_leave_one_out_tau_equals_scipy_on_every_deletion_with_ties():
    rng = np.random.default_rng(2)
    x = np.round(rng.normal(size=40), 1)  # many ties in both
    y = np.round(x + rng.normal(size=40), 1)
    loo = stats.kendall_tau_leave_one_out(x, y, chunk=7)
    expected = [sps.kendalltau(np.delete(x, i), np.delete(y, i)).statistic for i in range(40)]
    assert loo == pytest.approx(expected, abs=1e-12)
    x[5] = math.nan  # a NaN estimate ranks last
    low = x.copy()
    low[5] = np.nanmin(x) - 1
    assert stats.kendall_tau_leave_one_out(x, y) == pytest.approx(stats.kendall_tau_leave_one_out(low, y))


def test_jackknife_variance_of_a_mean_is_the_textbook_one():
    x = np.array([1.0, 4.0, 2.0, 8.0])
    loo = (x.sum() - x) / 3
    assert stats.jackknife_variance(loo) == pytest.approx(x.var(ddof=1) / 4)


def test_arch_variance_of_mean_difference_averages_seeds_before_the_jackknife():
    rng = np.random.default_rng(3)
    truth = rng.normal(size=30)
    a = truth + rng.normal(size=(2, 30))
    b = truth + 2 * rng.normal(size=(2, 30))
    loo = np.mean([stats.kendall_tau_leave_one_out(a[s], truth) - stats.kendall_tau_leave_one_out(b[s], truth) for s in range(2)], axis=0)
    assert stats.arch_variance_of_mean_difference(a, b, truth) == pytest.approx(stats.jackknife_variance(loo))
    assert stats.arch_variance_of_mean_difference(a, a, truth) == 0.0
    with pytest.raises(HarnessError, match="do not match"):
        stats.arch_variance_of_mean_difference(a[:, :5], b, truth)


def test_sign_flip_min_p():
    assert stats.sign_flip_min_p(3) == 0.25 and stats.sign_flip_min_p(5) == 0.0625 and stats.sign_flip_min_p(1) == 1.0
    for n in (2, 4, 6):
        assert stats.sign_flip_p(np.linspace(0.1, 0.2, n)) == pytest.approx(stats.sign_flip_min_p(n))


def test_arch_bootstrap_of_tau_difference():
    truth = np.arange(30.0)
    diff, lo, hi = stats.arch_bootstrap_tau_difference(truth, -truth, truth, resamples=50)
    assert (diff, lo, hi) == pytest.approx((2.0, 2.0, 2.0))
    diff, lo, hi = stats.arch_bootstrap_tau_difference(truth, truth.copy(), truth, resamples=50)
    assert (diff, lo, hi) == (0.0, 0.0, 0.0)
    rng = np.random.default_rng(0)
    a = truth + rng.normal(scale=5, size=30)
    b = truth + rng.normal(scale=20, size=30)
    diff, lo, hi = stats.arch_bootstrap_tau_difference(a, b, truth, resamples=300, seed=1)
    assert lo < diff < hi and diff > 0
    with pytest.raises(HarnessError, match="equal lengths"):
        stats.arch_bootstrap_tau_difference(a[:5], b, truth)


def test_power_is_the_exact_noncentral_t_of_the_two_sided_test():
    crit = sps.t.ppf(0.975, 4)
    nc = 0.05 * math.sqrt(5) / 0.044
    expected = sps.nct.sf(crit, 4, nc) + sps.nct.cdf(-crit, 4, nc)
    assert stats.paired_t_power(0.05, 0.044, 5) == pytest.approx(expected, rel=1e-12)
    assert stats.paired_t_power(0.0, 0.044, 5) == pytest.approx(0.05)  # under the null: the test's size
    assert stats.paired_t_power(-0.05, 0.044, 5) == pytest.approx(stats.paired_t_power(0.05, 0.044, 5))
    assert math.isnan(stats.paired_t_power(0.05, 0.044, 1))
    # far in the tails scipy's nct gives nan; the power is then 1, not nan
    assert stats.paired_t_power(0.7, 0.01, 2) == pytest.approx(1.0)
    assert 0 < stats.minimal_detectable_difference(0.01, 2) < 0.7


def test_minimal_detectable_difference_solves_the_exact_power():
    mdd = stats.minimal_detectable_difference(1.0, 5)
    assert stats.paired_t_power(mdd, 1.0, 5) == pytest.approx(0.8, abs=1e-9)
    # the exact value is a little above the (t + t) * sd / sqrt(n) approximation (1.662)
    assert mdd == pytest.approx(1.682, abs=1e-3) and mdd > 1.662473
    assert stats.minimal_detectable_difference(0.05, 5) == pytest.approx(0.05 * mdd, rel=1e-6)
    assert stats.minimal_detectable_difference(1.0, 20) < mdd
    assert math.isnan(stats.minimal_detectable_difference(1.0, 1))


def test_seeds_needed_is_the_first_n_reaching_the_power():
    n = stats.seeds_needed(0.05, 0.044)
    assert n == 9
    assert stats.paired_t_power(0.05, 0.044, n) >= 0.8 > stats.paired_t_power(0.05, 0.044, n - 1)
    assert stats.seeds_needed(0.05, 1e-5) == 2
    big = stats.seeds_needed(0.05, 0.3)
    assert stats.paired_t_power(0.05, 0.3, big) >= 0.8 > stats.paired_t_power(0.05, 0.3, big - 1)
    assert math.isnan(stats.seeds_needed(0.05, math.nan))


def test_mean_drop_tolerance_is_t_with_the_sds_df():
    assert stats.one_sided_t(0.05, 3) == pytest.approx(2.353363, rel=1e-6)
    assert stats.mean_drop_tolerance(0.1, 3, 4, 4) == pytest.approx(2.353363 * math.sqrt(2) * 0.1 / 2, rel=1e-6)
    assert stats.mean_drop_tolerance(0.1, 6, 2, 4) == pytest.approx(sps.t.ppf(0.95, 6) * 0.1 * math.sqrt(0.75), rel=1e-9)
    with pytest.raises(HarnessError):
        stats.mean_drop_tolerance(math.nan, 3, 4, 4)
    with pytest.raises(HarnessError, match="degrees of freedom"):
        stats.mean_drop_tolerance(0.1, 0, 4, 4)


def test_pooled_sd_and_its_degrees_of_freedom():
    a, b = [0.1, 0.2, 0.3, 0.4], [0.0, 0.2, 0.4]
    sd, df = stats.pooled_sd([a, b, [0.5]])
    ss = np.sum((np.array(a) - 0.25) ** 2) + np.sum((np.array(b) - 0.2) ** 2)
    assert df == 5 and sd == pytest.approx(math.sqrt(ss / 5))
    with pytest.raises(HarnessError, match="pooled"):
        stats.pooled_sd([[0.1]])


def test_whole_gate_rate():
    assert stats.whole_gate_false_alarm(0.05, 2) == pytest.approx(0.0975)
    assert stats.whole_gate_false_alarm(0.05, 1) == pytest.approx(0.05)
    assert stats.whole_gate_false_alarm(0.05, 3) <= 3 * 0.05
