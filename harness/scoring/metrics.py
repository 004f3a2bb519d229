"""Ranking-quality metrics of estimated scores (higher = better) against ground truth.

Ties and NaN are defined, not left to index order: a NaN estimate (a diverged or unscorable architecture)
ranks below every number, and regret, precision@K and the best true rank are exact expectations over
uniformly random tie-breaking of the estimate (closed form, nothing sampled), so a preset whose estimates
move in 0.05-point accuracy steps is not scored by which architecture happens to come first in the benchmark.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import special, stats

TOP_FRACTIONS = (0.002, 0.005, 0.01, 0.05)
PRECISION_KS = (10, 50)


def ranked(est: Sequence[float]) -> np.ndarray:
    """Estimates with NaN replaced by -inf: it ranks last (below every number, tied with other NaN)."""
    est = np.asarray(est, dtype=np.float64)
    return np.where(np.isnan(est), -np.inf, est)


def kendall_tau(est: np.ndarray, truth: np.ndarray) -> float:
    est = ranked(est)
    if len(est) < 2:
        return math.nan
    return float(stats.kendalltau(est, truth).statistic)


def spearman_rho(est: np.ndarray, truth: np.ndarray) -> float:
    if len(est) < 2:
        return math.nan
    # ranks, so NaN (-inf) ranks last without an infinite value reaching the correlation
    return float(stats.spearmanr(stats.rankdata(ranked(est)), truth).statistic)


def pearson_r(est: np.ndarray, truth: np.ndarray) -> float:
    """Linear correlation of the values themselves: undefined (nan) when an estimate is NaN."""
    if len(est) < 2 or not np.all(np.isfinite(est)) or np.std(est) == 0 or np.std(truth) == 0:
        return math.nan
    return float(stats.pearsonr(est, truth).statistic)


def top_fraction_size(fraction: float, n: int) -> int:
    """floor(fraction * n): the literature's top-k% subset sizes (31 / 78 / 156 of NB201's 15,625 for
    0.2 / 0.5 / 1%), over the whole space or a scored subset of n. The epsilon keeps products that are
    whole numbers in exact arithmetic (0.05 * 500) from flooring one below through rounding."""
    return int(math.floor(fraction * n + 1e-9))


def top_fraction_indices(truth: np.ndarray, fraction: float) -> np.ndarray:
    return np.argsort(-truth, kind="stable")[: top_fraction_size(fraction, len(truth))]


def top_fraction_tau(est: np.ndarray, truth: np.ndarray, fraction: float) -> tuple[float, int]:
    """Kendall tau among the top `fraction` of architectures by ground truth (n, at least 2 to be defined)."""
    top = top_fraction_indices(truth, fraction)
    if len(top) < 2:
        return math.nan, len(top)
    return kendall_tau(est[top], truth[top]), len(top)


def top_fraction_rho(est: np.ndarray, truth: np.ndarray, fraction: float) -> tuple[float, int]:
    """Spearman rho among the top `fraction` by ground truth (GM-NAS Table 7 and NAS-LID report it)."""
    top = top_fraction_indices(truth, fraction)
    if len(top) < 2:
        return math.nan, len(top)
    return spearman_rho(est[top], truth[top]), len(top)


def top_k_inclusion(values: np.ndarray, k: int) -> np.ndarray:
    """Probability of each element to be among the k largest when ties are broken uniformly at random:
    1 above the k-th largest value, 0 below it, and (places left) / (number tied) for those equal to it."""
    values = ranked(values)
    k = min(k, len(values))
    if k <= 0:
        return np.zeros(len(values))
    boundary = np.sort(values)[::-1][k - 1]
    above = values > boundary
    tied = values == boundary
    return np.where(above, 1.0, np.where(tied, (k - above.sum()) / tied.sum(), 0.0))


def precision_at_k(est: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Expected fraction of the predicted top-k that is in the true top-k, ties in either broken uniformly at
    random (independently): sum_i P(i in predicted top-k) * P(i in true top-k) / k."""
    k = min(k, len(truth))
    return float(np.dot(top_k_inclusion(est, k), top_k_inclusion(np.asarray(truth, dtype=np.float64), k)) / k)


def true_ranks(truth: np.ndarray) -> np.ndarray:
    """1-based rank by ground truth among the scored set, tied truths sharing the best rank (1 + number
    strictly better), so no tie is broken by index."""
    truth = np.asarray(truth, dtype=np.float64)
    return (len(truth) + 1 - stats.rankdata(truth, method="max")).astype(np.float64)


def _log_comb(n: np.ndarray, r: int) -> np.ndarray:
    """log C(n, r) elementwise, -inf where n < r (no way to choose)."""
    n = np.asarray(n, dtype=np.float64)
    ok = n >= r
    safe = np.where(ok, n, r)
    return np.where(ok, special.gammaln(safe + 1) - special.gammaln(r + 1) - special.gammaln(safe - r + 1), -np.inf)


def best_true_rank_in_top_k(est: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Expected best (smallest) true rank in the predicted top-k, ties in the estimate broken uniformly at
    random. The predicted top-k is the architectures above the k-th estimate (sure) plus r drawn without
    replacement from the g tied at it; the j-th best of the tied is the best drawn with probability
    [C(g-j, r-1)] / C(g, r), computed as a difference of survival terms C(g-j+1, r) / C(g, r)."""
    est = ranked(est)
    rank = true_ranks(truth)
    k = min(k, len(est))
    boundary = np.sort(est)[::-1][k - 1]
    sure = rank[est > boundary]
    tied = np.sort(rank[est == boundary])
    r, g = k - len(sure), len(tied)
    best_sure = sure.min() if len(sure) else math.inf
    if r == 0:
        return float(best_sure)
    above_j = g - np.arange(1, g + 1) + 1  # tied ranks from the j-th best on
    survive = np.exp(_log_comb(above_j, r) - _log_comb(np.array([g]), r))  # P(best drawn rank >= tied[j-1])
    p_best = survive - np.append(survive[1:], 0.0)
    return float(np.dot(p_best, np.minimum(tied, best_sure)))


def predicted_best_truth(est: np.ndarray, truth: np.ndarray) -> float:
    """Expected ground truth of the architecture predicted best, ties in the estimate (all-NaN included)
    broken uniformly at random: the mean truth of those tied at the largest estimate. Never a NaN's."""
    est = ranked(est)
    return float(np.mean(np.asarray(truth, dtype=np.float64)[est == est.max()]))


def regret(est: np.ndarray, truth: np.ndarray, optimum: float) -> float:
    """optimum - expected ground truth of the architecture predicted best (ties broken uniformly at random)."""
    return float(optimum - predicted_best_truth(est, truth))


def bootstrap_tau_ci(est: np.ndarray, truth: np.ndarray, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% interval of Kendall tau over architectures resampled with replacement."""
    if len(est) < 3 or resamples < 1:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    taus = np.empty(resamples)
    for i in range(resamples):
        idx = rng.integers(0, len(est), len(est))
        taus[i] = kendall_tau(est[idx], truth[idx])
    taus = taus[np.isfinite(taus)]
    return float(np.percentile(taus, 2.5)), float(np.percentile(taus, 97.5))


def first_of_each_class(classes: Sequence[str]) -> np.ndarray:
    """Positions of the first member of each equivalence class, in input order."""
    seen: set[str] = set()
    keep = []
    for i, c in enumerate(classes):
        if c not in seen:
            seen.add(c)
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def ranking_report(
    est: Sequence[float],
    truth: Sequence[float],
    optimum: float,
    classes: Sequence[str] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict:
    est = np.asarray(est, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if est.shape != truth.shape:
        raise ValueError(f"estimates {est.shape} and ground truth {truth.shape} differ in shape")
    report: dict = {
        "num_archs": int(len(est)),
        "num_nan_estimates": int(np.isnan(est).sum()),
        "kendall_tau": kendall_tau(est, truth),
        "spearman_rho": spearman_rho(est, truth),
        "pearson_r": pearson_r(est, truth),
        "regret": regret(est, truth, optimum),
        "predicted_best_truth": predicted_best_truth(est, truth),
        "optimum": float(optimum),
        "scored_set_best_truth": float(truth.max()),
    }
    lo, hi = bootstrap_tau_ci(est, truth, bootstrap, seed)
    report["kendall_tau_ci95"] = [lo, hi]
    for fraction in TOP_FRACTIONS:
        tau, n = top_fraction_tau(est, truth, fraction)
        key = f"top{fraction * 100:g}pct"
        report[f"kendall_tau_{key}"] = tau
        report[f"spearman_rho_{key}"] = top_fraction_rho(est, truth, fraction)[0]
        report[f"n_{key}"] = n
    for k in PRECISION_KS:
        report[f"precision_at_{k}"] = precision_at_k(est, truth, k)
        report[f"best_true_rank_in_top_{k}"] = best_true_rank_in_top_k(est, truth, k)
    report.update(top_aware_metrics(est, truth, seed))
    if classes is not None:
        keep = first_of_each_class(classes)
        report["num_archs_deisomorphic"] = int(len(keep))
        report["kendall_tau_deisomorphic"] = kendall_tau(est[keep], truth[keep])
    return report


# --- Rank metrics that see the top: sparse Kendall tau and random-K tau --------------------------------
SPARSE_RESOLUTION = 0.1  # accuracy points: truths closer than this are one bin, so their order is not scored
RANDOM_KS = (10, 20, 50, 100)
RANDOM_K_DRAWS = 200


def sparse_kendall_tau(est: np.ndarray, truth: np.ndarray, resolution: float = SPARSE_RESOLUTION) -> float:
    """Kendall tau-b of the estimates against the truth rounded to `resolution` (bins of width `resolution`
    centred on its multiples): pairs whose truths share a bin are ties of the truth, which tau-b neither
    rewards nor penalises. Undefined (nan) for fewer than two architectures or a constant side."""
    if resolution <= 0:
        raise ValueError(f"sparse tau resolution {resolution!r} must be > 0")
    est, truth = np.asarray(est, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if len(est) < 2:
        return math.nan
    binned = np.round(truth / resolution)
    if np.all(binned == binned[0]) or np.all(est == est[0]):
        return math.nan
    return float(stats.kendalltau(est, binned).statistic)


def random_k_tau(est: np.ndarray, truth: np.ndarray, k: int, draws: int = RANDOM_K_DRAWS, seed: int = 0) -> tuple[float, int]:
    """Mean Kendall tau-b over `draws` random subsets of k architectures (without replacement, seeded), as a
    search would meet them. Subsets on which tau-b is undefined (a constant side) are left out of the mean;
    returns (mean, subsets used). nan when k exceeds the architectures or no subset is defined."""
    est, truth = np.asarray(est, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if k < 2 or k > len(est):
        return math.nan, 0
    rng = np.random.default_rng([seed, k, 21])
    taus = []
    for _ in range(draws):
        idx = rng.choice(len(est), size=k, replace=False)
        e, t = est[idx], truth[idx]
        if np.all(e == e[0]) or np.all(t == t[0]):
            continue
        taus.append(stats.kendalltau(e, t).statistic)
    return (float(np.mean(taus)), len(taus)) if taus else (math.nan, 0)


def top_aware_metrics(est: np.ndarray, truth: np.ndarray, seed: int = 0) -> dict:
    """Sparse tau (at SPARSE_RESOLUTION points) and random-K taus (K in RANDOM_KS), for metrics.json."""
    out: dict = {"sparse_kendall_tau": sparse_kendall_tau(est, truth), "sparse_resolution": SPARSE_RESOLUTION,
                 "random_k_draws": RANDOM_K_DRAWS}
    for k in RANDOM_KS:
        out[f"random_{k}_tau"] = random_k_tau(est, truth, k, seed=seed)[0]
    return out
