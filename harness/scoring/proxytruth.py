"""The error decomposition: a run's estimates against the benchmark truth and against a proxy truth.

A proxy truth (`truth build`, results/truth/<space>-<preset>.csv) is each architecture trained standalone
on exactly the preset's task. On the same architectures three rankings are compared:

  estimate_vs_benchmark  what a run's tau has always been: proxy-task error + weight-sharing error
  estimate_vs_proxy      the weight-sharing error alone (the supernet vs. the same networks trained alone)
  proxy_vs_benchmark     the ceiling: how well any estimator on this proxy task could rank at best

Intervals: percentile bootstrap over architectures, the three taus recomputed on the same resamples.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import HarnessError
from harness.runs.fileio import read_json
from harness.scoring import metrics as M

# The committed tables live in the repository; HARNESS_TRUTH_DIR points elsewhere (tests, a cluster's copy).
COMMITTED_DIR = Path(__file__).resolve().parents[2] / "results" / "truth"
PROXY_COLUMN = "acc_mean"  # standalone held-out accuracy, averaged over the seeds trained
PAIR_TOP_FRACTIONS = (0.05, 0.1, 0.2)
# The settings that make a table the preset's task (compute.threads etc. do not change what is measured).
TASK_SECTIONS = ("shape", "data", "train")
IGNORED_TRAIN_KEYS = ("checkpoint_every", "check_finite_every")


def truth_dir() -> Path:
    return Path(os.environ.get("HARNESS_TRUTH_DIR") or COMMITTED_DIR)


@dataclass
class ProxyTruth:
    table: pd.DataFrame
    provenance: dict
    path: Path

    @property
    def name(self) -> str:
        return self.path.stem

    def values(self, archs) -> np.ndarray:
        lookup = dict(zip(self.table["arch"], self.table[PROXY_COLUMN]))
        return np.array([lookup[str(a)] for a in archs], dtype=np.float64)

    def seed_columns(self) -> list[str]:
        return [c for c in self.table.columns if c.startswith("acc_seed")]


def task_settings(config: dict) -> dict:
    out = {k: dict(config.get(k, {})) for k in TASK_SECTIONS}
    for key in IGNORED_TRAIN_KEYS:
        out["train"].pop(key, None)
    return out


def find(space: str, preset: str, cfg) -> tuple[ProxyTruth | None, str | None]:
    """The proxy truth of (space, preset) if one exists and was built on this run's task: (table, None);
    (None, why) otherwise (why is None when there is simply no table)."""
    path = truth_dir() / f"{space}-{preset}.csv"
    if not path.is_file():
        return None, None
    try:
        provenance = read_json(path.with_suffix(".json"))
        table = pd.read_csv(path)
        recorded = task_settings(provenance["identity"]["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"proxy truth {path} or its provenance {path.with_suffix('.json')} is unreadable ({exc}); "
                           f"rebuild it with `python -m harness truth build --preset {preset}`") from None
    import json

    current = task_settings(json.loads(json.dumps(cfg.to_dict(), default=str)))
    if recorded != current:
        differ = sorted(f"{s}.{k}" for s in TASK_SECTIONS for k in set(recorded[s]) | set(current[s])
                        if recorded[s].get(k) != current[s].get(k))
        return None, f"proxy truth {path.name} was built on another task ({', '.join(differ)} differ); not scored against it"
    return ProxyTruth(table, provenance, path), None


def _pair(x: np.ndarray, y: np.ndarray, seed: int) -> dict:
    out = {"kendall_tau": M.kendall_tau(x, y), "spearman_rho": M.spearman_rho(x, y)}
    for fraction in PAIR_TOP_FRACTIONS:
        tau, n = M.top_fraction_tau(x, y, fraction)
        out[f"kendall_tau_top{fraction * 100:g}pct"] = tau
        out[f"n_top{fraction * 100:g}pct"] = n
    out.update(M.top_aware_metrics(x, y, seed))
    return out


def decomposition(estimate: np.ndarray, benchmark: np.ndarray, proxy: np.ndarray, resamples: int = 1000, seed: int = 0) -> dict:
    """The three rankings on the same architectures, each with Kendall tau's 95% bootstrap interval."""
    estimate, benchmark, proxy = (np.asarray(v, dtype=np.float64) for v in (estimate, benchmark, proxy))
    if not (estimate.shape == benchmark.shape == proxy.shape):
        raise ValueError("estimate, benchmark and proxy truth must have one value per architecture each")
    pairs = {"estimate_vs_benchmark": (estimate, benchmark), "estimate_vs_proxy": (estimate, proxy),
             "proxy_vs_benchmark": (proxy, benchmark)}
    out = {name: _pair(x, y, seed) for name, (x, y) in pairs.items()}
    draws = {name: [] for name in pairs}
    rng = np.random.default_rng([seed, 20])
    n = len(estimate)
    for _ in range(resamples if n >= 3 else 0):
        idx = rng.integers(0, n, n)
        for name, (x, y) in pairs.items():
            draws[name].append(M.kendall_tau(x[idx], y[idx]))
    for name in pairs:
        taus = np.asarray(draws[name], dtype=np.float64)
        taus = taus[np.isfinite(taus)]
        out[name]["kendall_tau_ci95"] = [float(np.percentile(taus, 2.5)), float(np.percentile(taus, 97.5))] if len(taus) else [math.nan, math.nan]
    out["num_archs"] = int(n)
    out["bootstrap"] = int(resamples)
    return out


def seed_agreement(table: pd.DataFrame) -> dict:
    """Kendall tau between the first two seeds' accuracies, on the architectures trained with both: the
    proxy truth's own reliability."""
    columns = sorted(c for c in table.columns if c.startswith("acc_seed"))
    if len(columns) < 2:
        return {"seed_tau": math.nan, "seed_tau_archs": 0}
    both = table[[columns[0], columns[1]]].dropna()
    return {"seed_tau": M.kendall_tau(both[columns[0]].to_numpy(), both[columns[1]].to_numpy()),
            "seed_tau_archs": int(len(both)), "seed_tau_columns": columns[:2]}


def report(truth: ProxyTruth, archs, estimate: np.ndarray, benchmark: np.ndarray, resamples: int, seed: int) -> dict:
    out = decomposition(estimate, benchmark, truth.values(archs), resamples, seed)
    out.update({"proxy_truth": truth.name, "proxy_truth_column": PROXY_COLUMN,
                "proxy_truth_digest": truth.provenance.get("identity", {}).get("digest"), **seed_agreement(truth.table)})
    return out
