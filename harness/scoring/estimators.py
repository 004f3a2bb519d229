"""Estimators of a supernet run: which weights score (final | ema), and every estimator at once.

`estimate_columns` wraps a strategy's estimate for the engine: eval.weights picks the weights of the run's own
score; eval.all_estimators adds one `score_<estimator>` column per estimator (weights x accuracy|loss x flip) from
the same supernet, and `estimator_reports` turns those columns, and the two halves of the held-out images, into
ranking metrics (metrics.json -> estimators / probe_estimators).
"""
from __future__ import annotations

import contextlib

import numpy as np

from harness.config import estimator_name
from harness.scoring.groundtruth import GroundTruth
from harness.scoring.metrics import kendall_tau, ranking_report
from harness.training.weight_average import WeightAverage


def estimate_columns(strategy, archs: list, eval_cfg, averager: WeightAverage | None) -> dict[str, np.ndarray]:
    """strategy.estimate with the weights eval.weights names; with eval.all_estimators, also with the other
    weights, and one `score_<estimator>` column per estimator (higher = better) from the same supernet."""
    order = [eval_cfg.weights] + ([w for w in ("final", "ema") if w != eval_cfg.weights] if eval_cfg.all_estimators else [])
    columns: dict[str, np.ndarray] = {}
    for weights in order:
        with averager.swapped_in(strategy) if weights == "ema" else contextlib.nullcontext():
            part = {k: np.asarray(v) for k, v in strategy.estimate(archs).items()}
        if weights == eval_cfg.weights:
            columns.update(part)
        if eval_cfg.all_estimators:
            columns.update(_estimator_scores(part, weights))
    return columns


def _estimator_scores(part: dict[str, np.ndarray], weights: str) -> dict[str, np.ndarray]:
    prefix = "holdout" if "holdout_acc" in part else "supernet"
    scores = {}
    for flip in (False, True):
        tail = "_flip" if flip else ""
        scores[f"score_{estimator_name(weights, 'accuracy', flip)}"] = part[f"{prefix}_acc{tail}"]
        scores[f"score_{estimator_name(weights, 'loss', flip)}"] = -part[f"{prefix}_loss{tail}"]
    return scores


def estimator_reports(space, gt: GroundTruth, eval_cfg, archs: list, estimates: dict, seed: int) -> dict:
    """Ranking metrics of every estimator of an eval.all_estimators run, and of each half of the held-out
    images (by accuracy and by loss) with the two halves' agreement: the inputs of the noise study."""
    truth = gt.values(archs, eval_cfg.ground_truth)
    best = gt.best(eval_cfg.ground_truth)
    classes = [space.canonical_form(a) for a in archs]
    reports = {key[len("score_"):]: ranking_report(np.asarray(v, dtype=np.float64), truth, best, classes, 0, seed)
               for key, v in sorted(estimates.items()) if key.startswith("score_")}
    prefix = "holdout" if "holdout_acc_half1" in estimates else "supernet"
    halves = {}
    for by, column, sign in (("accuracy", "acc", 1.0), ("loss", "loss", -1.0)):
        first, second = estimates.get(f"{prefix}_{column}_half1"), estimates.get(f"{prefix}_{column}_half2")
        if first is None or second is None:
            continue
        first, second = sign * np.asarray(first, np.float64), sign * np.asarray(second, np.float64)
        halves[by] = {"kendall_tau_half1": kendall_tau(first, truth), "kendall_tau_half2": kendall_tau(second, truth),
                      "agreement_kendall_tau": kendall_tau(first, second)}
    return {"estimators": reports, "halves": halves}
