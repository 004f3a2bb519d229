"""Paired statistics against cases computable by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

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


def test_bootstrap_mean_interval():
    assert stats.bootstrap_mean_interval([0.1, 0.1, 0.1]) == pytest.approx((0.1, 0.1))
    lo, hi = stats.bootstrap_mean_interval([0.0, 0.1, 0.2, 0.3], seed=3)
    assert 0.0 <= lo < 0.15 < hi <= 0.3
    assert stats.bootstrap_mean_interval([0.0, 0.1, 0.2, 0.3], seed=3) == (lo, hi)
    assert all(math.isnan(v) for v in stats.bootstrap_mean_interval([0.2]))


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


def test_minimal_detectable_difference_paired_t():
    # (t_{0.975,4} + t_{0.8,4}) / sqrt(5) = (2.776445 + 0.940965) / 2.236068
    assert stats.minimal_detectable_difference(1.0, 5) == pytest.approx(1.662473, rel=1e-5)
    assert stats.minimal_detectable_difference(0.05, 5) == pytest.approx(0.05 * 1.662473, rel=1e-5)
    assert stats.minimal_detectable_difference(1.0, 20) < stats.minimal_detectable_difference(1.0, 5)
    assert math.isnan(stats.minimal_detectable_difference(1.0, 1))


def test_mean_drop_tolerance_is_z_sqrt2_sd_over_sqrt_k():
    assert stats.one_sided_z() == pytest.approx(1.644854, rel=1e-6)
    assert stats.mean_drop_tolerance(0.1, 4, 4) == pytest.approx(1.644854 * math.sqrt(2) * 0.1 / 2, rel=1e-6)
    assert stats.mean_drop_tolerance(0.1, 2, 4) == pytest.approx(1.644854 * 0.1 * math.sqrt(0.75), rel=1e-6)
    with pytest.raises(HarnessError):
        stats.mean_drop_tolerance(math.nan, 4, 4)
