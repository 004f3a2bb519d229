"""Where the noise of tau comes from, and which estimator makes it smallest (issue 14, sections 1-2).

Reads runs made with `--set eval.all_estimators=true` (one strategy and preset, several seeds) and prints,
per estimator (weights final|ema x accuracy|loss x flips):
  * mean tau and its seed sd, on the scored set and on the probe set (disjoint architectures);
  * the mean Kendall tau between the estimates of two seeds (how much two supernets agree);
and, for the final weights by accuracy and by loss, the noise decomposition of one run's tau:
  * seed     -- sd of tau across seeds (training: init, data order, path order; includes the two below);
  * images   -- from the two halves of the held-out images (independent estimates on one supernet):
                rms(tau_half1 - tau_half2) / 2, the sd at the full image count if the estimate's noise
                falls as 1/images;
  * archs    -- bootstrap sd of tau over the scored architectures (resampled with replacement), mean
                over seeds: what another draw of the scored set would change.
The recommendation rule is the issue's: among estimators whose mean probe tau is not below the default
(final-accuracy), the one with the smallest probe seed sd. It looks at probe architectures only.

usage: python benchmarks/estimator_study.py RUN_DIR [RUN_DIR ...] [--markdown OUT.md]
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.scoring.metrics import kendall_tau  # noqa: E402

DEFAULT = "final-accuracy"


def bootstrap_sd(est: np.ndarray, truth: np.ndarray, resamples: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    taus = [kendall_tau(est[i], truth[i]) for i in (rng.integers(0, len(est), len(est)) for _ in range(resamples))]
    return float(np.std(taus, ddof=1))


def load(run_dirs: list[Path]) -> list[dict]:
    runs = []
    for path in run_dirs:
        metrics = json.loads((path / "metrics.json").read_text())
        if "estimators" not in metrics:
            raise SystemExit(f"{path}: made without eval.all_estimators=true; rerun it with --set eval.all_estimators=true")
        runs.append({"path": path, "seed": metrics["seed"], "strategy": metrics["strategy"], "metrics": metrics,
                     "predictions": pd.read_csv(path / "predictions.csv")})
    keys = {(r["strategy"], r["metrics"]["preset"]) for r in runs}
    if len(keys) != 1:
        raise SystemExit(f"runs of one strategy and preset are compared here; got {sorted(keys)}")
    return sorted(runs, key=lambda r: r["seed"])


def estimator_table(runs: list[dict]) -> pd.DataFrame:
    names = sorted(runs[0]["metrics"]["estimators"]["estimators"])
    rows = []
    for name in names:
        scored = np.array([r["metrics"]["estimators"]["estimators"][name]["kendall_tau"] for r in runs])
        probe = np.array([r["metrics"]["probe_estimators"]["estimators"][name]["kendall_tau"] for r in runs
                          if "probe_estimators" in r["metrics"]])
        column = f"score_{name}"
        pairs = [kendall_tau(a["predictions"][column].to_numpy(), b["predictions"][column].to_numpy())
                 for a, b in itertools.combinations(runs, 2)]
        rows.append({"estimator": name, "tau mean": scored.mean(), "tau seed sd": scored.std(ddof=1),
                     "probe tau mean": probe.mean() if len(probe) else np.nan,
                     "probe tau seed sd": probe.std(ddof=1) if len(probe) > 1 else np.nan,
                     "seed-seed agreement": float(np.mean(pairs)) if pairs else np.nan})
    return pd.DataFrame(rows)


def noise_table(runs: list[dict], resamples: int) -> pd.DataFrame:
    rows = []
    for by, column in (("accuracy", "score_final-accuracy"), ("loss", "score_final-loss")):
        scored = np.array([r["metrics"]["estimators"]["estimators"][f"final-{by}"]["kendall_tau"] for r in runs])
        halves = [r["metrics"]["estimators"]["halves"].get(by) for r in runs]
        diffs = np.array([h["kendall_tau_half1"] - h["kendall_tau_half2"] for h in halves if h])
        archs = [bootstrap_sd(r["predictions"][column].to_numpy(), r["predictions"]["ground_truth"].to_numpy(), resamples, r["seed"])
                 for r in runs]
        rows.append({"estimate by": by, "seed sd": scored.std(ddof=1),
                     "images sd": float(np.sqrt(np.mean(diffs ** 2)) / 2) if len(diffs) else np.nan,
                     "archs sd": float(np.mean(archs)),
                     "half-half agreement": float(np.mean([h["agreement_kendall_tau"] for h in halves if h])) if any(halves) else np.nan})
    return pd.DataFrame(rows)


def recommend(table: pd.DataFrame, tie: float = 0.005) -> str:
    """Smallest probe seed sd among estimators whose probe mean is not below the default's; sds within `tie`
    of the smallest count as equal (far below what a handful of seeds resolves) and the higher mean wins."""
    default = table.set_index("estimator").loc[DEFAULT]
    eligible = table[table["probe tau mean"] >= default["probe tau mean"]]
    close = eligible[eligible["probe tau seed sd"] <= eligible["probe tau seed sd"].min() + tie]
    best = close.sort_values("probe tau mean", ascending=False).iloc[0]
    return (f"recommended (probe set: mean tau not below {DEFAULT}'s {default['probe tau mean']:.3f}, then smallest seed sd, "
            f"sds within {tie} counted equal and the higher mean taken): "
            f"{best['estimator']} (probe mean {best['probe tau mean']:.3f}, seed sd {best['probe tau seed sd']:.3f}; "
            f"{DEFAULT}: seed sd {default['probe tau seed sd']:.3f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--resamples", type=int, default=300, help="bootstrap resamples over architectures")
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    args = parser.parse_args(argv)
    runs = load(args.runs)
    first = runs[0]["metrics"]
    head = (f"{first['strategy']} on {first['preset']}, seeds {', '.join(str(r['seed']) for r in runs)}: "
            f"{first['metrics']['num_archs']} scored architectures"
            + (f", {first['probe_metrics']['num_archs']} probe architectures" if "probe_metrics" in first else ""))
    estimators = estimator_table(runs)
    noise = noise_table(runs, args.resamples)
    text = "\n\n".join([head, "Estimators (tau vs ground truth):", estimators.to_markdown(index=False, floatfmt=".3f"),
                        "Noise of one run's tau, final weights:", noise.to_markdown(index=False, floatfmt=".3f"),
                        recommend(estimators)])
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
