"""Multi-seed table of differentiable-search runs next to the published NB201 numbers.

Per (strategy, preset, overrides): mean +- std over seeds of the derived architecture's ground truth on
the three NB201 columns, its skip/none fraction, and the Kendall tau of both rankings a search yields
(alpha score and supernet single-path accuracy, recomputed from predictions.csv against the run's own
ground-truth column). The published rows are data (published_search.toml), printed with their source.
"""
from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from harness.runs.fileio import read_json
from harness.scoring.groundtruth import COLUMNS
from harness.scoring.metrics import kendall_tau

HEADERS = {"cifar10_test": "CIFAR-10", "cifar100_test": "CIFAR-100", "imagenet16_120_test": "ImageNet16-120"}
RANKINGS = {"tau_alpha": "alpha_score", "tau_supernet": "supernet_acc"}


def published() -> list[dict]:
    text = resources.files("harness.reports").joinpath("published_search.toml").read_text()
    return tomllib.loads(text)["method"]


def find_runs(paths: Iterable[Path]) -> list[Path]:
    """Run directories among `paths` and their immediate children, in name order."""
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / "metrics.json").exists():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if (p / "metrics.json").exists()))
    return found


def read_search_run(run_dir: Path) -> dict | None:
    """One row, or None if the run is not a differentiable search (no history in its summary)."""
    metrics = read_json(run_dir / "metrics.json")
    summary = metrics.get("strategy_summary") or {}
    if not summary.get("history"):
        return None
    config = read_json(run_dir / "config.json") if (run_dir / "config.json").exists() else {}
    final = summary["history"][-1]
    row = {
        "run": run_dir.name,
        "strategy": metrics.get("strategy"),
        "preset": metrics.get("preset"),
        "overrides": " ".join(config.get("overrides", [])),
        "seed": metrics.get("seed"),
        "identity": config.get("identity_digest") or "",
        "config": json.dumps(config.get("config"), sort_keys=True),
        "rank_by": summary.get("rank_by"),
        "derived_arch": final["arch"],
        **{column: final[column] for column in COLUMNS},
        "skip_fraction": final["skip_fraction"],
        "none_fraction": final["none_fraction"],
        "tau_score": (metrics.get("metrics") or {}).get("kendall_tau", np.nan),
        "train_seconds": metrics.get("train_seconds", np.nan),
    }
    predictions = run_dir / "predictions.csv"
    frame = pd.read_csv(predictions) if predictions.exists() else pd.DataFrame()
    for key, column in RANKINGS.items():
        ok = column in frame and "ground_truth" in frame
        row[key] = kendall_tau(frame[column].to_numpy(), frame["ground_truth"].to_numpy()) if ok else np.nan
    return row


def collect(paths: Iterable[Path]) -> pd.DataFrame:
    """One row per search run; a re-run of the same configuration and seed (or identity) gets
    `duplicate_of` set and is left out of the means."""
    rows = [row for row in (read_search_run(p) for p in find_runs(paths)) if row is not None]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["duplicate_of"] = None
    kept: dict = {}
    for idx in sorted(frame.index, key=lambda i: frame.at[i, "run"]):
        keys = [("id", frame.at[idx, "identity"])] if frame.at[idx, "identity"] else []
        keys.append(("seed", frame.at[idx, "strategy"], frame.at[idx, "preset"], frame.at[idx, "overrides"],
                     frame.at[idx, "config"], frame.at[idx, "seed"]))
        first = next((kept[k] for k in keys if k in kept), None)
        if first is not None:
            frame.at[idx, "duplicate_of"] = first
        else:
            kept.update({k: frame.at[idx, "run"] for k in keys})
    return frame


def _mean_std(values: pd.Series, digits: int) -> str:
    values = values.dropna()
    if values.empty:
        return "n/a"
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def render(runs: pd.DataFrame) -> str:
    columns = ["method", "source / runs", "seeds", *HEADERS.values(), "skip frac", "none frac", "tau alpha", "tau supernet"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    dup = runs[runs["duplicate_of"].notna()] if "duplicate_of" in runs else runs.iloc[0:0]
    if not runs.empty:
        unique = runs[runs["duplicate_of"].isna()] if "duplicate_of" in runs else runs
        for (strategy, preset, overrides), group in unique.groupby(["strategy", "preset", "overrides"], sort=True):
            cells = [
                f"{strategy} (this harness)",
                f"preset {preset}" + (f", {overrides}" if overrides else ""),
                ",".join(str(s) for s in sorted(group["seed"])),
                *(_mean_std(group[c], 2) for c in COLUMNS),
                _mean_std(group["skip_fraction"], 2),
                _mean_std(group["none_fraction"], 2),
                _mean_std(group["tau_alpha"], 3),
                _mean_std(group["tau_supernet"], 3),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    for ref in published():
        values = []
        for c in COLUMNS:
            std = ref.get(f"{c}_std")
            values.append(f"{ref[c]:.2f}" + (f" ± {std:.2f}" if std is not None else ""))
        lines.append("| " + " | ".join([f"{ref['name']} (published)", ref["source"], "", *values, "", "", "", ""]) + " |")
    if len(dup):
        lines += ["", "Re-runs of a run above (same configuration and seed; not averaged): "
                  + ", ".join(f"{r} = {k}" for r, k in zip(dup["run"], dup["duplicate_of"]))]
    return "\n".join(lines)


def render_runs(runs: pd.DataFrame) -> str:
    """Per-run detail: derived architecture and its ground truth."""
    if runs.empty:
        return "(no differentiable-search runs found)"
    keep = ["run", "seed", "derived_arch", *COLUMNS, "tau_score", "tau_alpha", "tau_supernet", "train_seconds"]
    return runs[keep].to_string(index=False, float_format=lambda v: f"{v:.3f}")
