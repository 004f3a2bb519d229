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
The choice looks at probe architectures of tuning seeds only (seeds >= 100; verdict seeds are refused), all
estimators being scored on the same supernets (paired): the incumbent (`--incumbent`, the preset's current
estimator) is kept unless another estimator's probe tau is higher on every tuning seed, and among those the
highest mean wins. Each estimator's paired probe-tau difference to the incumbent is printed with its per-seed
values and its paired-t interval. (The earlier rule, smallest probe seed sd among estimators not below final-accuracy,
needs five or more seeds to mean anything: with two, a seed sd is one number's worth of noise.)

usage: python benchmarks/estimator_study.py RUN_DIR [RUN_DIR ...] [--incumbent NAME] [--markdown OUT.md] [--csv-prefix P]
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
from harness.scoring.tuning import choose  # noqa: E402  (the rule every tuning study applies)
from harness.scoring.stats import t_interval  # noqa: E402

INCUMBENT = "final-loss-flip"
from harness.scoring.archsets import TUNING_SEEDS_FROM as FIRST_TUNING_SEED  # noqa: E402  (one boundary for every tuning study)


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


def probe_taus(runs: list[dict], name: str) -> np.ndarray:
    return np.array([r["metrics"]["probe_estimators"]["estimators"][name]["kendall_tau"] for r in runs])


def paired_to_incumbent(runs: list[dict], incumbent: str) -> pd.DataFrame:
    """Per estimator: probe tau minus the incumbent's on the same supernet, per seed, with a paired-t interval."""
    names = sorted(runs[0]["metrics"]["probe_estimators"]["estimators"])
    base = probe_taus(runs, incumbent)
    rows = []
    for name in names:
        diffs = probe_taus(runs, name) - base
        mean, lo, hi = t_interval(diffs) if len(diffs) > 1 else (float(diffs.mean()), np.nan, np.nan)
        rows.append({"estimator": name, f"probe tau - {incumbent}": mean, "95% t lo": lo, "95% t hi": hi,
                     "per seed": " / ".join(f"{d:+.3f}" for d in diffs)})
    return pd.DataFrame(rows)


def recommend(table: pd.DataFrame, runs: list[dict], incumbent: str) -> str:
    """The tuning rule (harness.scoring.tuning.choose) applied to the estimators' probe taus per seed."""
    means = table.set_index("estimator")["probe tau mean"]
    seeds = [r["seed"] for r in runs]
    choice, better = choose(incumbent, {n: dict(zip(seeds, probe_taus(runs, n))) for n in means.index})
    runner = means.drop(choice).sort_values(ascending=False, kind="stable")
    return (f"choice (the incumbent {incumbent} unless another's probe tau is higher on every tuning seed, then the "
            f"highest mean): {choice} (probe mean {means[choice]:.3f}; incumbent {means[incumbent]:.3f}; "
            f"highest other mean {runner.index[0]} {runner.iloc[0]:.3f}; higher on every seed: {', '.join(better) or 'none'})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--resamples", type=int, default=300, help="bootstrap resamples over architectures")
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    parser.add_argument("--csv-prefix", type=Path, help="also write PREFIX_probe.csv and PREFIX_vs_incumbent.csv")
    parser.add_argument("--incumbent", default=INCUMBENT, help=f"the preset's current estimator (default {INCUMBENT})")
    args = parser.parse_args(argv)
    runs = load(args.runs)
    verdict_seeds = sorted(r["seed"] for r in runs if r["seed"] < FIRST_TUNING_SEED)
    if verdict_seeds:
        raise SystemExit(f"estimator_study: seeds {verdict_seeds} are verdict seeds; accepted: runs at tuning seeds >= "
                         f"{FIRST_TUNING_SEED} (settings are never chosen on the seeds a verdict is computed on)")
    first = runs[0]["metrics"]
    head = (f"{first['strategy']} on {first['preset']}, seeds {', '.join(str(r['seed']) for r in runs)}: "
            f"{first['metrics']['num_archs']} scored architectures"
            + (f", {first['probe_metrics']['num_archs']} probe architectures" if "probe_metrics" in first else ""))
    estimators = estimator_table(runs)
    noise = noise_table(runs, args.resamples)
    text = "\n\n".join([head, "Estimators (tau vs ground truth):", estimators.to_markdown(index=False, floatfmt=".3f"),
                        "Noise of one run's tau, final weights:", noise.to_markdown(index=False, floatfmt=".3f"),
                        f"Probe tau against the incumbent {args.incumbent}, paired on each supernet:",
                        paired_to_incumbent(runs, args.incumbent).to_markdown(index=False, floatfmt="+.3f"),
                        recommend(estimators, runs, args.incumbent)])
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    if args.csv_prefix:  # probe columns only: what the choice looked at (e.g. under results/summaries/ for the docs)
        seeds = ",".join(str(r["seed"]) for r in runs)
        probe = estimators[["estimator", "probe tau mean", "probe tau seed sd", "seed-seed agreement"]].copy()
        probe.insert(1, "tuning seeds", seeds)
        args.csv_prefix.parent.mkdir(parents=True, exist_ok=True)
        probe.to_csv(f"{args.csv_prefix}_probe.csv", index=False, float_format="%.3f")
        paired_to_incumbent(runs, args.incumbent).to_csv(f"{args.csv_prefix}_vs_incumbent.csv", index=False, float_format="%+.3f")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
