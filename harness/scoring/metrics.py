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
    if classes is not None:
        keep = first_of_each_class(classes)
        report["num_archs_deisomorphic"] = int(len(keep))
        report["kendall_tau_deisomorphic"] = kendall_tau(est[keep], truth[keep])
    return report
