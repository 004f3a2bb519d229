"""Statistics of a comparison between strategies: intervals over seeds, paired differences, power.

Pure functions on numbers; no run directories, no strategy names. Conventions:
* an interval is a (low, high) pair at 95% unless told; undefined ones are (nan, nan), never an exception;
* a *paired* difference is A - B on the same seed (same data order, same scored architectures), so the
  seed-to-seed noise both strategies share cancels;
* every resampling is seeded, so a report is reproducible.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats as sps

from harness.errors import HarnessError

LEVEL = 0.95
# Above this many seeds the 2^n exact sign-flip enumeration is replaced by a seeded Monte Carlo sample.
EXACT_SIGN_FLIP_MAX = 20
NAN2 = (math.nan, math.nan)


def _finite(values: Sequence[float], what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(arr)):
        raise HarnessError(f"{what} has non-finite values {arr.tolist()}; drop failed runs before comparing")
    return arr


def t_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean over seeds; (mean, nan, nan) with one value."""
    x = _finite(values, "values")
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return (mean, *NAN2)
    half = float(sps.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def paired_differences(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    a, b = _finite(a, "A"), _finite(b, "B")
    if a.shape != b.shape:
        raise HarnessError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    return a - b


def bootstrap_mean_interval(diffs: Sequence[float], resamples: int = 10000, seed: int = 0,
                            level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of the mean paired difference, resampling seeds (pairs) with replacement.

    With few seeds this is narrower than the t-interval (the bootstrap ignores that the sd itself is
    estimated); it is reported beside the exact sign-flip p, which has no such small-sample bias.
    """
    d = _finite(diffs, "differences")
    if len(d) < 2:
        return NAN2
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), (resamples, len(d)))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def sign_flip_p(diffs: Sequence[float], resamples: int = 100000, seed: int = 0) -> float:
    """Two-sided permutation p-value of mean(diffs) = 0: under the null each paired difference is as likely
    negative as positive, so all 2^n sign patterns are equally likely. Exact enumeration for
    n <= EXACT_SIGN_FLIP_MAX (the smallest possible p is 2 / 2^n: 0.5 with 2 seeds, 0.0625 with 5),
    a seeded Monte Carlo estimate above."""
    d = _finite(diffs, "differences")
    n = len(d)
    if n == 0:
        return math.nan
    observed = abs(d.sum())
    # Sums that equal the observed one up to rounding count as "as extreme".
    tol = 1e-12 * max(1.0, float(np.abs(d).sum()))
    if n <= EXACT_SIGN_FLIP_MAX:
        sums = np.zeros(1)
        for value in d:  # all 2^n signed sums, doubling per element
            sums = np.concatenate([sums + value, sums - value])
        return float(np.mean(np.abs(sums) >= observed - tol))
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(resamples, n))
    hits = np.sum(np.abs(signs @ d) >= observed - tol)
    return float((hits + 1) / (resamples + 1))


def kendall(est: np.ndarray, truth: np.ndarray) -> float:
    return float(sps.kendalltau(est, truth).statistic)


def arch_bootstrap_tau_difference(est_a: Sequence[float], est_b: Sequence[float], truth: Sequence[float],
                                  resamples: int = 1000, seed: int = 0, level: float = LEVEL) -> tuple[float, float, float]:
    """(tau(A) - tau(B), low, high) within one seed: both strategies scored the same architectures; each
    resample draws architecture indices with replacement and recomputes both taus on the same draw, so the
    interval reflects only which architectures happened to be scored, not the training seed."""
    a, b, t = (_finite(v, w) for v, w in ((est_a, "estimates of A"), (est_b, "estimates of B"), (truth, "ground truth")))
    if not (a.shape == b.shape == t.shape):
        raise HarnessError(f"paired architecture scores need equal lengths, got {len(a)}, {len(b)}, {len(t)}")
    diff = kendall(a, t) - kendall(b, t)
    if len(t) < 3 or resamples < 1:
        return (diff, *NAN2)
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    for i in range(resamples):
        idx = rng.integers(0, len(t), len(t))
        out[i] = kendall(a[idx], t[idx]) - kendall(b[idx], t[idx])
    out = out[np.isfinite(out)]
    if len(out) == 0:
        return (diff, *NAN2)
    tail = 100 * (1 - level) / 2
    return diff, float(np.percentile(out, tail)), float(np.percentile(out, 100 - tail))


def minimal_detectable_difference(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true mean paired difference a two-sided paired t-test at `alpha` detects with `power`, given
    the sd of the paired differences and n seeds: (t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n).
    (The usual approximation that ignores the non-central t's skew; it slightly understates the difference
    for very small n.) nan for n < 2 or an undefined sd."""
    if n < 2 or sd is None or not math.isfinite(sd):
        return math.nan
    if not (0 < alpha < 1 and 0 < power < 1):
        raise HarnessError(f"alpha={alpha!r} and power={power!r} must be in (0, 1)")
    df = n - 1
    return float((sps.t.ppf(1 - alpha / 2, df) + sps.t.ppf(power, df)) * sd / math.sqrt(n))


def one_sided_z(false_alarm: float = 0.05) -> float:
    """z_{1-false_alarm} (1.645 at 5%)."""
    if not 0 < false_alarm < 0.5:
        raise HarnessError(f"false-alarm rate {false_alarm!r} must be in (0, 0.5)")
    return float(sps.norm.ppf(1 - false_alarm))


def mean_drop_tolerance(sd: float, k_now: int, k_base: int, false_alarm: float = 0.05) -> float:
    """Largest drop of a mean of k_now seeds below a baseline mean of k_base seeds that is still noise at the
    given one-sided false-alarm rate: z * sd * sqrt(1/k_now + 1/k_base) (= z * sqrt(2) * sd / sqrt(K) for
    k_now = k_base = K). Assumes seed taus are independent and normal with the same sd before and after,
    and treats the baseline's measured sd as the true one."""
    if k_now < 1 or k_base < 1:
        raise HarnessError(f"seed counts {k_now}, {k_base} must be >= 1")
    if sd is None or not math.isfinite(sd) or sd < 0:
        raise HarnessError(f"seed sd {sd!r} must be a finite number >= 0")
    return one_sided_z(false_alarm) * sd * math.sqrt(1 / k_now + 1 / k_base)
