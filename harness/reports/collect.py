"""One row per run directory, from its config.json / status.json / metrics.json, whatever state it is in.

A run directory may be complete, failed, interrupted, or written by an older version with fewer fields:
every field is optional here and a missing one becomes NaN / None, never an exception.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from harness.config import estimator_name

# metrics.json["metrics"] keys copied into the run row (absent ones become NaN).
METRIC_KEYS = (
    "num_archs",
    "kendall_tau",
    "spearman_rho",
    "pearson_r",
    "kendall_tau_top1pct",
    "kendall_tau_top5pct",
    "kendall_tau_deisomorphic",
    "precision_at_10",
    "precision_at_50",
    "regret",
    "predicted_best_truth",
    "optimum",
    "sparse_kendall_tau",
    "random_50_tau",
)
# metrics.json["truth_decomposition"][pair]["kendall_tau"] -> run-row column (NaN without a proxy truth).
DECOMPOSITION_KEYS = (
    ("estimate_vs_benchmark", "truth_tau_estimate_vs_benchmark"),
    ("estimate_vs_proxy", "truth_tau_estimate_vs_proxy"),
    ("proxy_vs_benchmark", "truth_tau_proxy_vs_benchmark"),
)
RUN_FILES = ("config.json", "status.json", "metrics.json")
COLUMNS = (
    "run", "path", "state", "error", "strategy", "space", "preset", "seed", "overrides", "config_digest", "identity",
    "ground_truth_column", "estimator", "bn_mode", "git_commit", "total_steps", "steps_per_epoch", "train_seconds", "wall_seconds", "step",
    "has_predictions", "estimation_images", "estimates_on_test", *METRIC_KEYS, "proxy_truth", "truth_archs",
    *(column for _pair, column in DECOMPOSITION_KEYS),
)


def _read(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def config_digest(config: dict | None) -> str:
    """Short hash of everything that defines a run except its seed: runs are averaged only when equal."""
    if not config:
        return "?"
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]


def _lock_held(path: Path) -> bool | None:
    """Whether a process holds the run's lock now (None: a run from before locks existed)."""
    try:
        with open(path / "run.lock") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False
    except OSError:
        return None


def estimation_images(data: dict, recorded: dict | None = None) -> tuple[str, bool | None]:
    """('2000 train' | '1000 train + 1017 test', whether any official test image was estimated on) from a
    run's data config; the run's own record of the test images it held out (metrics.json -> data) wins."""
    if not data:
        return "?", None
    defaults = {"holdout_images": 1000, "holdout_test": False, "eval_images": 1000}  # DataConfig's, for lean records
    held, eval_images = (int(data.get(k, defaults[k])) for k in ("holdout_images", "eval_images"))
    train = min(held, eval_images)
    test = eval_images - train if data.get("holdout_test", defaults["holdout_test"]) else 0
    if recorded and isinstance(recorded.get("holdout_test_images"), int):
        test = min(test, recorded["holdout_test_images"])
    return (f"{train} train + {test} test" if test else f"{train} train"), test > 0


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any((path / name).exists() for name in RUN_FILES)


def read_run(path: Path) -> dict:
    path = Path(path)
    config, status, metrics = (_read(path / name) for name in RUN_FILES)
    results = metrics.get("metrics") if isinstance(metrics.get("metrics"), dict) else {}
    state = status.get("state") or ("complete" if metrics else "unknown")
    if state == "complete" and not metrics:
        state = "incomplete"  # status says done but the result file is missing
    if state == "running" and _lock_held(path) is False:
        state = "killed"  # says running, but no process holds it: killed without a chance to record it (SIGKILL, power)
    cfg = config.get("config") if isinstance(config.get("config"), dict) else {}
    shape = cfg.get("shape", {}) if isinstance(cfg.get("shape"), dict) else {}
    eval_cfg = cfg.get("eval", {}) if isinstance(cfg.get("eval"), dict) else {}
    seed = metrics.get("seed", config.get("seed"))
    data_cfg = cfg.get("data", {}) if isinstance(cfg.get("data"), dict) else {}
    images, on_test = estimation_images(data_cfg, metrics.get("data") if isinstance(metrics.get("data"), dict) else None)
    row: dict[str, Any] = {
        "run": path.name,
        "path": str(path),
        "state": state,
        "error": status.get("error"),
        "strategy": metrics.get("strategy", config.get("strategy")),
        "space": metrics.get("space", config.get("space")),
        "preset": metrics.get("preset", config.get("preset")),
        "seed": int(seed) if isinstance(seed, int) else None,
        "overrides": " ".join(config.get("overrides") or []),
        "config_digest": config_digest(cfg),
        "identity": config.get("identity_digest") or f"legacy-{config_digest({'config': cfg, 'seed': seed, 'strategy': config.get('strategy'), 'space': config.get('space')})}",
        "ground_truth_column": metrics.get("ground_truth_column", eval_cfg.get("ground_truth")),
        # Runs from before the estimator was recorded were scored with the final weights, no flips.
        "estimator": metrics.get("estimator") or estimator_name(eval_cfg.get("weights", "final"), eval_cfg.get("estimate_by", "accuracy"),
                                                                bool(eval_cfg.get("flip", False))),
        "bn_mode": metrics.get("bn_mode", shape.get("bn_mode")),
        "git_commit": metrics.get("git_commit"),
        "total_steps": _number(metrics.get("total_steps")),
        "steps_per_epoch": _number(metrics.get("steps_per_epoch")),
        "train_seconds": _number(metrics.get("train_seconds")),
        "wall_seconds": _number(metrics.get("wall_seconds")),
        "step": _number(status.get("step")),
        "has_predictions": (path / "predictions.csv").is_file(),
        "estimation_images": images,
        "estimates_on_test": on_test,
    }
    for key in METRIC_KEYS:
        row[key] = _number(results.get(key))
    decomposition = metrics.get("truth_decomposition") if isinstance(metrics.get("truth_decomposition"), dict) else {}
    row["proxy_truth"] = decomposition.get("proxy_truth")
    row["truth_archs"] = _number(decomposition.get("num_archs"))
    for pair, column in DECOMPOSITION_KEYS:
        row[column] = _number((decomposition.get(pair) or {}).get("kendall_tau"))
    return row


def run_dirs(root: Path) -> list[Path]:
    """Run directories directly under `root` (or `root` itself if it is one), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    if is_run_dir(root):
        return [root]
    return sorted(p for p in root.iterdir() if is_run_dir(p))


def collect(roots: Path | list[Path]) -> pd.DataFrame:
    roots = [roots] if isinstance(roots, (str, Path)) else roots
    rows = [read_run(p) for root in roots for p in run_dirs(Path(root))]
    return mark_duplicates(pd.DataFrame(rows, columns=COLUMNS))


# A complete run repeats another when it has the same identity, or the same configuration and seed (an
# identity that differs only in data files or device is still not an extra seed).
DUPLICATE_KEYS = ["strategy", "space", "preset", "overrides", "config_digest", "seed"]


def mark_duplicates(runs: pd.DataFrame, keys: list[str] = DUPLICATE_KEYS) -> pd.DataFrame:
    """Adds `duplicate_of`: for all but the first (by run name) complete run of a key, the kept run's name.
    Duplicates are reported, never averaged as extra seeds."""
    runs = runs.copy()
    runs["duplicate_of"] = None
    if runs.empty:
        return runs
    done = runs[runs["state"] == "complete"]
    key_frame = done[[k for k in keys if k in done]].astype(str)
    first: dict[tuple, str] = {}
    by_identity: dict[str, str] = {}
    for idx in sorted(done.index, key=lambda i: runs.at[i, "run"]):
        key = tuple(key_frame.loc[idx])
        ident = runs.at[idx, "identity"] if "identity" in runs else None
        ident = ident if isinstance(ident, str) and ident else None  # runs recorded before identities have none
        kept = by_identity.get(ident) if ident else None
        kept = kept or first.get(key)
        if kept is not None:
            runs.at[idx, "duplicate_of"] = kept
        else:
            first[key] = runs.at[idx, "run"]
            if ident:
                by_identity[ident] = runs.at[idx, "run"]
    return runs


def unique_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs without the duplicates of another (what tables and figures use)."""
    if "duplicate_of" not in runs:
        runs = mark_duplicates(runs)
    return runs[runs["duplicate_of"].isna()]
