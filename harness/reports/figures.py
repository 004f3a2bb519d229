"""Figures from run directories (matplotlib, Agg): estimate-vs-truth scatter, tau over training, disturbance.

Curves are drawn only from what a run recorded: a run without a per-epoch tau file or a disturbance
measurement is skipped, never interpolated.
"""
from __future__ import annotations

import math
from pathlib import Path
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

# What runs record over training, by the disturbance probe (harness/features/disturbance.py):
# rank_disturbance.csv (step, tau_previous, tau_truth) and disturbance_pd.csv (t, pd_mean, pd_q25, pd_q75, ...).
TAU_FILE, TAU_X, TAU_Y = "rank_disturbance.csv", "step", "tau_truth"
PD_FILE, PD_X, PD_Y, PD_BAND = "disturbance_pd.csv", "t", "pd_mean", ("pd_q25", "pd_q75")


def _read_csv(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return None


def representative_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Per strategy x preset x config: the complete run with the lowest seed (seed 0 when it exists)."""
    done = runs[(runs["state"] == "complete")].copy()
    if done.empty:
        return done
    done["_seed"] = done["seed"].fillna(1 << 30)
    keys = ["strategy", "space", "preset", "overrides", "config_digest"]
    for key in keys:
        done[key] = done[key].fillna("?").astype(str)
    return done.sort_values([*keys, "_seed"]).groupby(keys, sort=True).head(1).drop(columns="_seed")


def _label(row: pd.Series) -> str:
    text = f"{row['strategy']} / {row['preset']}"
    if row.get("overrides"):
        text += f"\n{row['overrides']}"
    return text


def _grid(count: int, cols: int = 4):
    cols = max(1, min(cols, count))
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    flat = axes.ravel().tolist()
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def _save(fig, path: Path) -> list[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    written = []
    for suffix in (".png", ".pdf"):
        target = path.with_suffix(suffix)
        fig.savefig(target, dpi=130)
        written.append(target)
    plt.close(fig)
    return written


def scatter_figure(runs: pd.DataFrame, path: Path) -> list[Path]:
    """Estimate (y) vs ground truth (x) of every scored architecture, one panel per strategy x preset."""
    reps = representative_runs(runs)
    reps = reps[reps["has_predictions"].astype(bool)] if len(reps) else reps
    panels = []
    for _, row in reps.iterrows():
        frame = _read_csv(Path(row["path"]) / "predictions.csv")
        if frame is not None and {"estimate", "ground_truth"} <= set(frame.columns):
            panels.append((row, frame))
    if not panels:
        return []
    fig, axes = _grid(len(panels))
    for ax, (row, frame) in zip(axes, panels):
        ax.scatter(frame["ground_truth"], frame["estimate"], s=4, alpha=0.5, linewidths=0)
        positive = frame["estimate"][frame["estimate"] > 0]
        if frame["estimate"].min() >= 0 and len(positive) and positive.max() / positive.min() > 1e3:
            # e.g. synflow spans many orders of magnitude (and is 0 for a cell that passes nothing)
            ax.set_yscale("symlog", linthresh=float(positive.min()))
        ax.set_title(f"{_label(row)}\nseed {row['seed']}  tau={row['kendall_tau']:.3f}", fontsize=8)
        ax.set_xlabel(str(frame["ground_truth_column"].iloc[0]) if "ground_truth_column" in frame else "ground truth", fontsize=8)
        ax.set_ylabel("estimate", fontsize=8)
        ax.tick_params(labelsize=7)
    return _save(fig, path)


def tau_curve(run_dir: Path) -> pd.DataFrame | None:
    frame = _read_csv(Path(run_dir) / TAU_FILE)
    if frame is None or not {TAU_X, TAU_Y} <= set(frame.columns) or not frame[TAU_Y].notna().any():
        return None
    return frame


def tau_over_training_figure(runs: pd.DataFrame, path: Path) -> list[Path]:
    """Kendall tau of the probe ranking vs ground truth over training, x in epochs where known."""
    curves = [(row, frame) for _, row in representative_runs(runs).iterrows()
              if (frame := tau_curve(Path(row["path"]))) is not None]
    if not curves:
        return []
    fig, ax = plt.subplots(figsize=(6, 4))
    in_epochs = all(pd.notna(row.get("steps_per_epoch")) and row.get("steps_per_epoch") > 0 for row, _ in curves)
    for row, frame in curves:
        x = frame[TAU_X] / row["steps_per_epoch"] if in_epochs else frame[TAU_X]
        ax.plot(x, frame[TAU_Y], marker=".", label=f"{row['strategy']} / {row['preset']} (seed {row['seed']})")
    ax.set_xlabel("training epoch" if in_epochs else "training step")
    ax.set_ylabel("Kendall tau vs ground truth (probe set)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def pd_curve(run_dir: Path) -> pd.DataFrame | None:
    frame = _read_csv(Path(run_dir) / PD_FILE)
    if frame is None or not {PD_X, PD_Y} <= set(frame.columns) or frame.empty:
        return None
    return frame.sort_values(PD_X)


def disturbance_figure(runs: pd.DataFrame, path: Path) -> list[Path]:
    """Mean performance disturbance PD(t) with the interquartile band, one line per run that measured it."""
    curves = [(row, frame) for _, row in representative_runs(runs).iterrows()
              if (frame := pd_curve(Path(row["path"]))) is not None]
    if not curves:
        return []
    fig, ax = plt.subplots(figsize=(6, 4))
    for row, frame in curves:
        line, = ax.plot(frame[PD_X], frame[PD_Y], marker=".", label=f"{row['strategy']} / {row['preset']} (seed {row['seed']})")
        if set(PD_BAND) <= set(frame.columns):
            ax.fill_between(frame[PD_X], frame[PD_BAND[0]], frame[PD_BAND[1]], color=line.get_color(), alpha=0.15)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("updates t after the probe architecture was trained")
    ax.set_ylabel("PD(t) = acc right after - acc t updates later")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def write_figures(runs: pd.DataFrame, out: Path) -> list[Path]:
    out = Path(out)
    written = []
    written += scatter_figure(runs, out / "scatter_estimate_vs_truth")
    written += tau_over_training_figure(runs, out / "tau_over_training")
    written += disturbance_figure(runs, out / "disturbance")
    return written
