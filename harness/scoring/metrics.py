"""Ranking-quality metrics of estimated scores (higher = better) against ground truth."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats

TOP_FRACTIONS = (0.002, 0.005, 0.01, 0.05)
PRECISION_KS = (10, 50)


def kendall_tau(est: np.ndarray, truth: np.ndarray) -> float:
    if len(est) < 2:
        return math.nan
    return float(stats.kendalltau(est, truth).statistic)


def spearman_rho(est: np.ndarray, truth: np.ndarray) -> float:
    if len(est) < 2:
        return math.nan
    return float(stats.spearmanr(est, truth).statistic)


def pearson_r(est: np.ndarray, truth: np.ndarray) -> float:
    if len(est) < 2 or np.std(est) == 0 or np.std(truth) == 0:
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


def precision_at_k(est: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Fraction of the predicted top-k that is in the true top-k."""
    k = min(k, len(truth))
    pred = set(np.argsort(-est, kind="stable")[:k].tolist())
    true = set(np.argsort(-truth, kind="stable")[:k].tolist())
    return len(pred & true) / k


def best_true_rank_in_top_k(est: np.ndarray, truth: np.ndarray, k: int) -> int:
    """1-based true rank (among the scored set) of the best architecture in the predicted top-k."""
    true_rank = np.empty(len(truth), dtype=np.int64)
    true_rank[np.argsort(-truth, kind="stable")] = np.arange(1, len(truth) + 1)
    pred = np.argsort(-est, kind="stable")[: min(k, len(truth))]
    return int(true_rank[pred].min())


def regret(est: np.ndarray, truth: np.ndarray, optimum: float) -> float:
    """optimum - ground truth of the architecture predicted best (ties broken by first index)."""
    return float(optimum - truth[int(np.argmax(est))])


def bootstrap_tau_ci(est: np.ndarray, truth: np.ndarray, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% interval of Kendall tau over architectures resampled with replacement."""
    if len(est) < 3 or resamples < 1:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    taus = np.empty(resamples)
    for i in range(resamples):
        idx = rng.integers(0, len(est), len(est))
        taus[i] = stats.kendalltau(est[idx], truth[idx]).statistic
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
        "kendall_tau": kendall_tau(est, truth),
        "spearman_rho": spearman_rho(est, truth),
        "pearson_r": pearson_r(est, truth),
        "regret": regret(est, truth, optimum),
        "predicted_best_truth": float(truth[int(np.argmax(est))]),
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
