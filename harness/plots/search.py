"""Differentiable-search figures from run directories (history in metrics.json["strategy_summary"]).

`plot_search(run_dirs, out_stem)` writes two figures, each as PNG and PDF:
  {stem}_accuracy: NB201 ground truth of the derived architecture vs. epoch, one panel per column;
  {stem}_ops:      fraction of skip_connect (solid) and none (dashed) edges in it vs. epoch (DARTS' collapse).
Several runs overlay (one colour each).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from harness.errors import HarnessError  # noqa: E402
from harness.runs.fileio import read_json  # noqa: E402
from harness.scoring.groundtruth import COLUMNS  # noqa: E402

COLUMN_TITLES = {"cifar10_test": "CIFAR-10", "cifar100_test": "CIFAR-100", "imagenet16_120_test": "ImageNet16-120"}


@dataclass
class SearchHistory:
    label: str
    frame: pd.DataFrame  # one row per recorded epoch: epoch, arch, COLUMNS..., skip_fraction, none_fraction


def load_history(run_dir: Path) -> SearchHistory:
    """From metrics.json; for a run still in progress (or interrupted), from its last checkpoint."""
    run_dir = Path(run_dir)
    if (run_dir / "metrics.json").exists():
        record = read_json(run_dir / "metrics.json")
        history = (record.get("strategy_summary") or {}).get("history")
        suffix = ""
    elif (run_dir / "checkpoint.pt").exists() and (run_dir / "config.json").exists():
        import torch

        record = read_json(run_dir / "config.json")
        state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
        history = (state.get("strategy") or {}).get("history")
        suffix = f" (unfinished, step {state.get('step')})"
    else:
        raise HarnessError(f"{run_dir} has neither metrics.json nor checkpoint.pt; plot-search needs a darts/darts2/gdas/idarts run")
    if not history:
        raise HarnessError(
            f"{run_dir} ({record.get('strategy')}) records no search history; accepted: runs of darts, darts2, gdas, idarts"
        )
    return SearchHistory(f"{record.get('strategy')} seed {record.get('seed')}{suffix}", pd.DataFrame(history))


def draw_truth(ax, run: SearchHistory, column: str, color=None) -> None:
    ax.plot(run.frame["epoch"], run.frame[column], marker=".", color=color, label=run.label)


def draw_op_fractions(ax, run: SearchHistory, color=None) -> None:
    ax.plot(run.frame["epoch"], run.frame["skip_fraction"], color=color, label=f"{run.label}: skip")
    ax.plot(run.frame["epoch"], run.frame["none_fraction"], color=color, linestyle="--", label=f"{run.label}: none")


def save(fig, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def plot_search(run_dirs: Sequence[Path], out_stem: Path, optimum: dict[str, float] | None = None) -> list[Path]:
    runs = [load_history(d) for d in run_dirs]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    out_stem = Path(out_stem)

    fig, axes = plt.subplots(1, len(COLUMNS), figsize=(4.2 * len(COLUMNS), 3.4))
    for ax, column in zip(axes, COLUMNS):
        for i, run in enumerate(runs):
            draw_truth(ax, run, column, colors[i % len(colors)])
        if optimum and column in optimum:
            ax.axhline(optimum[column], color="grey", linewidth=0.8, linestyle=":", label="NB201 optimum")
        ax.set_title(COLUMN_TITLES[column])
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy of derived arch (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Ground truth of the derived architecture (argmax of alpha) during search")
    paths = save(fig, out_stem.with_name(out_stem.name + "_accuracy"))

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, run in enumerate(runs):
        draw_op_fractions(ax, run, colors[i % len(colors)])
    ax.set_xlabel("epoch")
    ax.set_ylabel("fraction of the 6 edges")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("skip_connect (solid) and none (dashed) in the derived architecture")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return paths + save(fig, out_stem.with_name(out_stem.name + "_ops"))
