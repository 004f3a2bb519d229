"""Statistics of a comparison between strategies: intervals over seeds, paired tests, power, the gate's tolerance.

Pure functions on numbers; no run directories, no strategy names. Conventions:
* an interval is a (low, high) pair at 95% unless told; undefined ones are (nan, nan), never an exception;
* a *paired* difference is A - B on the same seed (same data order, same scored architectures), so the
  seed-to-seed noise both strategies share cancels;
* one decision rule per comparison: the paired t-test, whose interval and two-sided p come from the same
  t statistic, so "the interval excludes 0" holds exactly when "p < 1 - level";
* no percentile bootstrap over seeds: with a handful of seeds it covers far less often than it says
  (5 seeds: ~84% for a "95%" interval); resampling is used over architectures only (hundreds of them);
* every resampling is seeded, so a report is reproducible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import optimize
from scipy import stats as sps

from harness.errors import HarnessError

LEVEL = 0.95
ALPHA = 0.05
POWER = 0.8
# The tau difference every report asks "how many seeds to detect it" about.
TARGET_DIFFERENCE = 0.05
# Above this many seeds the 2^n exact sign-flip enumeration is replaced by a seeded Monte Carlo sample.
EXACT_SIGN_FLIP_MAX = 20
# seeds_needed stops searching here (a paired sd near 0 needs 2, a huge one more than anyone runs).
MAX_SEEDS = 100000
NAN2 = (math.nan, math.nan)


def _finite(values: Sequence[float], what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(arr)):
        raise HarnessError(f"{what} has non-finite values {arr.tolist()}; drop failed runs before comparing")
    return arr


def _check_rates(alpha: float, power: float | None = None) -> None:
    if not 0 < alpha < 1 or (power is not None and not 0 < power < 1):
        raise HarnessError(f"alpha={alpha!r} and power={power!r} must be in (0, 1)")


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


@dataclass(frozen=True)
class TTest:
    """A t-test of mean = 0: the estimate, its standard error and degrees of freedom, and from that one
    statistic both the two-sided p and the interval, so they cannot disagree."""
    mean: float
    se: float
    df: float
    t: float
    p: float
    low: float
    high: float


def _t_test(mean: float, se: float, df: float, level: float) -> TTest:
    if not (math.isfinite(se) and math.isfinite(df)) or df <= 0:
        return TTest(mean, se, df, math.nan, math.nan, math.nan, math.nan)
    if se == 0:  # every difference equal: the mean is known exactly
        p = 1.0 if mean == 0 else 0.0
        return TTest(mean, 0.0, df, math.copysign(math.inf, mean) if mean else math.nan, p, mean, mean)
    t = mean / se
    half = float(sps.t.ppf(0.5 + level / 2, df)) * se
    return TTest(mean, se, df, t, float(2 * sps.t.sf(abs(t), df)), mean - half, mean + half)


def paired_t_test(diffs: Sequence[float], level: float = LEVEL) -> TTest:
    """Paired t-test on per-seed differences A - B: t = mean / (sd / sqrt(n)), n - 1 degrees of freedom.
    Equals scipy.stats.ttest_rel(a, b) (its pvalue and confidence_interval(level)). nan fields for n < 2."""
    d = _finite(diffs, "differences")
    n = len(d)
    if n == 0:
        return TTest(*(math.nan,) * 7)
    mean = float(d.mean())
    if n < 2:
        return TTest(mean, *(math.nan,) * 6)
    return _t_test(mean, float(d.std(ddof=1)) / math.sqrt(n), n - 1, level)


def welch_satterthwaite_df(variances: Sequence[float], dfs: Sequence[float]) -> float:
    """Degrees of freedom of a sum of independent variance estimates v_i with df_i each:
    (sum v_i)^2 / sum(v_i^2 / df_i)."""
    v = np.asarray(variances, dtype=np.float64)
    f = np.asarray(dfs, dtype=np.float64)
    denominator = float(np.sum(v ** 2 / f))
    return math.inf if denominator == 0 else float(v.sum() ** 2 / denominator)


def two_source_t_test(diffs: Sequence[float], arch_variance: float, arch_df: float, level: float = LEVEL) -> TTest:
    """t-test of the mean paired difference as a claim about the *search space*: the seed variance of the
    mean (sd^2 / n, n - 1 df) plus the architecture-sampling variance of the mean difference (shared by
    every seed, so it does not shrink with n; estimated from the scored architectures, arch_df df), with
    Welch-Satterthwaite degrees of freedom. With arch_variance 0 it is the paired t-test."""
    d = _finite(diffs, "differences")
    n = len(d)
    if n < 2 or not math.isfinite(arch_variance) or arch_variance < 0:
        return TTest(float(d.mean()) if n else math.nan, *(math.nan,) * 6)
    seed_variance = float(d.var(ddof=1)) / n
    df = welch_satterthwaite_df([seed_variance, arch_variance], [n - 1, arch_df])
    return _t_test(float(d.mean()), math.sqrt(seed_variance + arch_variance), df, level)


def sign_flip_p(diffs: Sequence[float], resamples: int = 100000, seed: int = 0) -> float:
    """Two-sided permutation p-value of mean(diffs) = 0: under the null each paired difference is as likely
    negative as positive, so all 2^n sign patterns are equally likely. Exact enumeration for
    n <= EXACT_SIGN_FLIP_MAX (the smallest possible p is sign_flip_min_p(n)), a seeded Monte Carlo estimate above.
    A robustness column beside the paired t-test (it assumes symmetry, not normality), not the decision rule."""
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


def sign_flip_min_p(n: int) -> float:
    """Smallest two-sided sign-flip p n seeds can give (all signs equal): 2 / 2^n (0.25 at 3, 0.0625 at 5)."""
    return math.nan if n < 1 else min(1.0, 2.0 / 2 ** n)


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


# ---- architecture-sampling variance: leave-one-architecture-out Kendall tau ----------------------------------
def _sign_rows(x: np.ndarray, rows: slice) -> np.ndarray:
    return np.sign(x[rows, None] - x[None, :])


def kendall_tau_leave_one_out(est: Sequence[float], truth: Sequence[float], chunk: int = 512) -> np.ndarray:
    """tau-b of (est, truth) with each architecture left out in turn (len n), exact and in O(n^2): the
    concordance sum and the tie counts of the full set minus the left-out architecture's own pairs."""
    x, y = np.asarray(est, dtype=np.float64).ravel(), _finite(truth, "ground truth")
    if np.isnan(x).any():  # a NaN estimate ranks last, as in harness.scoring.metrics
        x = np.where(np.isnan(x), (np.nanmin(x) if not np.isnan(x).all() else 0.0) - 1.0, x)
    x = _finite(x, "estimates")
    n = len(x)
    if n < 4 or x.shape != y.shape:
        raise HarnessError(f"leave-one-out tau needs >= 4 paired values of equal length, got {len(x)} and {len(y)}")
    row_concord = np.empty(n)
    row_ties_x = np.empty(n)
    row_ties_y = np.empty(n)
    for start in range(0, n, chunk):
        rows = slice(start, min(n, start + chunk))
        sx, sy = _sign_rows(x, rows), _sign_rows(y, rows)
        row_concord[rows] = (sx * sy).sum(axis=1)
        row_ties_x[rows] = (sx == 0).sum(axis=1) - 1  # minus the architecture paired with itself
        row_ties_y[rows] = (sy == 0).sum(axis=1) - 1
    concord = row_concord.sum() / 2  # each unordered pair counted from both ends
    ties_x, ties_y = row_ties_x.sum() / 2, row_ties_y.sum() / 2
    pairs = (n - 1) * (n - 2) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return (concord - row_concord) / np.sqrt((pairs - (ties_x - row_ties_x)) * (pairs - (ties_y - row_ties_y)))


def jackknife_variance(leave_one_out: np.ndarray) -> float:
    """(n - 1) / n * sum (theta_(-i) - mean theta_(-.))^2: the jackknife variance of the full-sample statistic."""
    v = np.asarray(leave_one_out, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = len(v)
    return math.nan if n < 2 else float((n - 1) / n * np.sum((v - v.mean()) ** 2))


def arch_variance_of_mean_difference(est_a: Sequence[Sequence[float]], est_b: Sequence[Sequence[float]],
                                     truth: Sequence[float]) -> float:
    """Architecture-sampling variance of mean over seeds of tau(A_s) - tau(B_s), every seed scoring the same
    architectures (rows: seeds, columns: architectures): the jackknife over architectures of that mean,
    leaving one architecture out of every seed at once. The architecture sample is shared by all seeds, so
    this variance does not shrink with more seeds. (It also holds a seed-by-architecture share of order
    1/n seeds that the seed variance counts again: slightly conservative.)"""
    truth = _finite(truth, "ground truth")
    a = np.atleast_2d(np.asarray(est_a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(est_b, dtype=np.float64))
    if a.shape != b.shape or a.shape[1] != len(truth):
        raise HarnessError(f"per-seed estimates {a.shape} and {b.shape} do not match {len(truth)} architectures")
    loo = np.mean([kendall_tau_leave_one_out(a[s], truth) - kendall_tau_leave_one_out(b[s], truth)
                   for s in range(a.shape[0])], axis=0)
    return jackknife_variance(loo)


# ---- power of the paired t-test ----------------------------------------------------------------------------
def paired_t_power(difference: float, sd: float, n: int, alpha: float = ALPHA) -> float:
    """Exact power of the two-sided paired t-test at `alpha` with n seeds when the true mean difference is
    `difference` and the paired sd is `sd`: P(|T| > t_{1-alpha/2, n-1}) for T noncentral t with n - 1 df and
    noncentrality difference * sqrt(n) / sd. nan for n < 2 or an undefined sd."""
    _check_rates(alpha)
    if n < 2 or sd is None or not math.isfinite(sd) or sd < 0 or not math.isfinite(difference):
        return math.nan
    if sd == 0:
        return 1.0 if difference != 0 else alpha
    df = n - 1
    crit = float(sps.t.ppf(1 - alpha / 2, df))
    nc = abs(difference) * math.sqrt(n) / sd  # the power is symmetric in the sign of the difference
    # scipy's nct returns nan far in a tail; there the far tail's probability is 0 and the near one 1
    far = float(sps.nct.cdf(-crit, df, nc))
    near = float(sps.nct.sf(crit, df, nc))
    if not math.isfinite(near):
        near = 1.0 - float(sps.nct.cdf(crit, df, nc))
    if not math.isfinite(near):
        near = 1.0 if nc > crit else 0.0
    return min(1.0, near + (far if math.isfinite(far) else 0.0))


def minimal_detectable_difference(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest true mean paired difference the two-sided paired t-test at `alpha` detects with `power`,
    given the paired sd and n seeds: the root of paired_t_power(delta) = power (exact noncentral t, not the
    (t + t) * sd / sqrt(n) approximation). nan for n < 2 or an undefined sd."""
    _check_rates(alpha, power)
    if n < 2 or sd is None or not math.isfinite(sd) or sd < 0:
        return math.nan
    if sd == 0:
        return 0.0
    if power <= alpha:
        return 0.0
    hi = sd
    while paired_t_power(hi, sd, n, alpha) < power:
        hi *= 2
    return float(optimize.brentq(lambda d: paired_t_power(d, sd, n, alpha) - power, 0.0, hi, xtol=1e-12 * sd))


def seeds_needed(difference: float, sd: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Fewest seeds (>= 2) at which the paired t-test detects a true `difference` with `power`, at paired sd
    `sd`; nan for an undefined sd, inf beyond MAX_SEEDS."""
    _check_rates(alpha, power)
    if sd is None or not math.isfinite(sd) or sd < 0 or not math.isfinite(difference) or difference == 0:
        return math.nan
    if paired_t_power(difference, sd, 2, alpha) >= power:
        return 2
    lo, hi = 2, 4  # power rises with n: double, then bisect
    while paired_t_power(difference, sd, hi, alpha) < power:
        lo, hi = hi, hi * 2
        if hi > MAX_SEEDS:
            return math.inf
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if paired_t_power(difference, sd, mid, alpha) >= power else (mid, hi)
    return hi


# ---- the regression gate's tolerance -----------------------------------------------------------------------
def one_sided_t(false_alarm: float, df: float) -> float:
    """t_{1-false_alarm, df} (2.353 at 5% with 3 df, 1.943 with 6)."""
    if not 0 < false_alarm < 0.5:
        raise HarnessError(f"false-alarm rate {false_alarm!r} must be in (0, 0.5)")
    if not df > 0:
        raise HarnessError(f"degrees of freedom {df!r} must be > 0 (the sd needs >= 2 seeds)")
    return float(sps.t.ppf(1 - false_alarm, df))


def pooled_sd(samples: Sequence[Sequence[float]]) -> tuple[float, int]:
    """(pooled sd, its degrees of freedom): sqrt(sum (n_i - 1) s_i^2 / sum (n_i - 1)) over the samples of
    >= 2 values, df = sum (n_i - 1). Valid when every sample has the same true sd."""
    ss, df = 0.0, 0
    for sample in samples:
        x = _finite(sample, "seed taus")
        if len(x) >= 2:
            ss += float(np.sum((x - x.mean()) ** 2))
            df += len(x) - 1
    if df == 0:
        raise HarnessError("a pooled sd needs at least one sample of >= 2 seeds")
    return math.sqrt(ss / df), df


def mean_drop_tolerance(sd: float, df: float, k_now: int, k_base: int, false_alarm: float = 0.05) -> float:
    """Largest drop of a mean of k_now fresh seeds below a baseline mean of k_base seeds that is still noise at
    the one-sided false-alarm rate: t_{1-a, df} * sd * sqrt(1/k_now + 1/k_base), df being the degrees of freedom
    of the sd estimate. (baseline mean - fresh mean) / (sd * sqrt(1/k_now + 1/k_base)) is then exactly t with df
    degrees of freedom when seed taus are independent and normal with one true sd, so the rate is a exactly."""
    if k_now < 1 or k_base < 1:
        raise HarnessError(f"seed counts {k_now}, {k_base} must be >= 1")
    if sd is None or not math.isfinite(sd) or sd < 0:
        raise HarnessError(f"seed sd {sd!r} must be a finite number >= 0")
    return one_sided_t(false_alarm, df) * sd * math.sqrt(1 / k_now + 1 / k_base)


def gate_power(drop: float, sd: float, df: float, k_now: int, k_base: int, false_alarm: float = 0.05) -> float:
    """Chance that the gate fails a true mean drop `drop` when the seed sd is `sd`: (drop_hat) / (s * sqrt(1/k_now
    + 1/k_base)) is noncentral t with df degrees of freedom and noncentrality drop / (sd * sqrt(...)), so the
    power is its exact tail beyond t_{1-a, df} (the rule of mean_drop_tolerance)."""
    crit = one_sided_t(false_alarm, df)
    if sd is None or not math.isfinite(sd) or sd <= 0:
        raise HarnessError(f"seed sd {sd!r} must be a finite number > 0")
    nc = drop / (sd * math.sqrt(1 / k_now + 1 / k_base))
    tail = float(sps.nct.sf(crit, df, nc))
    return tail if math.isfinite(tail) else (1.0 if nc > crit else 0.0)


def drop_caught_with_power(sd: float, df: float, k_now: int, k_base: int, false_alarm: float = 0.05,
                           power: float = POWER) -> float:
    """The true mean drop that the gate fails with probability `power` (root of gate_power = power)."""
    _check_rates(false_alarm, power)
    hi = sd
    while gate_power(hi, sd, df, k_now, k_base, false_alarm) < power:
        hi *= 2
    return float(optimize.brentq(lambda d: gate_power(d, sd, df, k_now, k_base, false_alarm) - power, 0.0, hi,
                                 xtol=1e-12 * sd))


def whole_gate_false_alarm(per_strategy: float, m: int) -> float:
    """1 - (1 - a)^m: the chance that at least one of m gated strategies fails by noise alone when their
    fresh seed noise is independent. A shared (pooled) sd only makes the tests positively dependent, which
    can lower this, never raise it; it is below the Bonferroni bound m * a."""
    if m < 0 or not 0 <= per_strategy <= 1:
        raise HarnessError(f"per-strategy rate {per_strategy!r} and strategy count {m!r} out of range")
    return 1 - (1 - per_strategy) ** m
