"""Disturbance figures from run directories written by the disturbance probe (harness.features.disturbance).

`plot_run(run_dir)`: one run's PD curve and probe-ranking tau over training, saved next to its data.
`plot_comparison(run_dirs, out_stem)`: several runs side by side (e.g. ws vs dinas), for `harness plot`.
The draw_* functions take a matplotlib Axes so other figures can reuse them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harness.errors import HarnessError  # noqa: E402
from harness.runs.fileio import read_json  # noqa: E402


@dataclass
class RunDisturbance:
    label: str
    pd: pd.DataFrame  # one row per (event, lag): columns lag, pd, ...
    ranks: pd.DataFrame  # one row per snapshot: step, tau_previous, tau_truth
    total_steps: int | None


def run_label(run_dir: Path) -> str:
    """'dinas (grad) seed 0' from the run's config.json; the directory name if there is none."""
    config_path = Path(run_dir) / "config.json"
    if not config_path.exists():
        return Path(run_dir).name
    record = read_json(config_path)
    name = record.get("strategy", Path(run_dir).name)
    # The options set in the config, plus the variant even when it is the default (from the run's summary).
    options = dict(record.get("config", {}).get("strategy", {}).get(name, {}) or {})
    metrics_path = Path(run_dir) / "metrics.json"
    if metrics_path.exists():
        resolved = (read_json(metrics_path).get("strategy_summary") or {}).get("options") or {}
        if "variant" in resolved:
            options.setdefault("variant", resolved["variant"])
    parts = [str(options.pop("variant"))] if "variant" in options else []
    parts += [f"{k}={v}" for k, v in sorted(options.items())]
    detail = f" ({', '.join(parts)})" if parts else ""
    return f"{name}{detail} seed {record.get('seed', '?')}"


def load_run(run_dir: Path, label: str | None = None) -> RunDisturbance:
    run_dir = Path(run_dir)
    events = run_dir / "disturbance_events.csv"
    if not events.exists():
        raise HarnessError(f"{run_dir} has no disturbance measurement (disturbance_events.csv); rerun it with --measure-disturbance")
    ranks = pd.read_csv(run_dir / "rank_disturbance.csv") if (run_dir / "rank_disturbance.csv").exists() else pd.DataFrame()
    status = read_json(run_dir / "status.json") if (run_dir / "status.json").exists() else {}
    return RunDisturbance(label or run_label(run_dir), pd.read_csv(events), ranks, status.get("total_steps"))


def draw_pd_curve(ax, run: RunDisturbance, color=None) -> None:
    """Mean PD over events against the number of later updates, with the interquartile range shaded."""
    grouped = run.pd.groupby("lag")["pd"]
    lags = np.array(sorted(grouped.groups), dtype=float)
    mean = grouped.mean().reindex(lags).to_numpy()
    q25 = grouped.quantile(0.25).reindex(lags).to_numpy()
    q75 = grouped.quantile(0.75).reindex(lags).to_numpy()
    (line,) = ax.plot(lags, mean, marker="o", label=run.label, color=color)
    ax.fill_between(lags, q25, q75, alpha=0.2, color=line.get_color())
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("later updates t")
    ax.set_ylabel("PD = acc after own update - acc t updates later (points)")
    ax.set_title("performance disturbance (mean, IQR)")


def draw_pd_distribution(ax, runs: Sequence[RunDisturbance], lag: int) -> None:
    data, labels = [], []
    for run in runs:
        values = run.pd.loc[run.pd["lag"] == lag, "pd"].to_numpy()
        if len(values):
            data.append(values)
            labels.append(run.label)
    if data:
        ax.boxplot(data, tick_labels=labels)
        ax.tick_params(axis="x", labelrotation=15)
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.set_ylabel(f"PD at t={lag} (points)")
    ax.set_title(f"PD distribution over probe events, t={lag}")


def draw_tau_over_training(ax, run: RunDisturbance, color=None) -> None:
    if run.ranks.empty:
        return
    (line,) = ax.plot(run.ranks["step"], run.ranks["tau_truth"], marker=".", label=f"{run.label}: vs ground truth", color=color)
    ax.plot(run.ranks["step"], run.ranks["tau_previous"], linestyle="--", color=line.get_color(), alpha=0.7,
            label=f"{run.label}: vs previous snapshot")
    ax.set_xlabel("training step")
    ax.set_ylabel("Kendall tau of the probe ranking")
    ax.set_title("rank disturbance over training")


def save(fig, stem: Path) -> list[Path]:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def plot_run(run_dir: Path) -> list[Path]:
    run = load_run(run_dir)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    draw_pd_curve(left, run)
    draw_tau_over_training(right, run)
    right.legend(fontsize=7)
    fig.suptitle(run.label)
    return save(fig, Path(run_dir) / "disturbance")


def plot_comparison(run_dirs: Sequence[Path], out_stem: Path) -> list[Path]:
    runs = [load_run(d) for d in run_dirs]
    lags = sorted(set.intersection(*(set(r.pd["lag"].unique().tolist()) for r in runs))) or [1]
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run in enumerate(runs):
        draw_pd_curve(axes[0], run, colors[i % len(colors)])
        draw_tau_over_training(axes[2], run, colors[i % len(colors)])
    axes[0].legend(fontsize=8)
    draw_pd_distribution(axes[1], runs, int(max(lags)))
    axes[2].legend(fontsize=7)
    fig.suptitle(" vs ".join(r.label for r in runs))
    return save(fig, out_stem)
