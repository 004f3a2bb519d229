"""Aggregate collected runs (one row per strategy x preset x config, mean +- std over seeds) and render them.

Seeds are averaged only within one exact configuration (same config digest): a re-tuned preset or an
override gives a separate row instead of silently mixing numbers. A weight-sharing row whose mean tau is
below the `params` baseline of the same preset and ground-truth column gets a remark.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import pandas as pd

from harness.errors import HarnessError
from harness.runs.fileio import write_text
from harness.registry import STRATEGIES
from harness.reports.collect import mark_duplicates

BASELINE = "params"
# The estimator is part of the group: runs scored differently are never pooled (the config digest differs too).
GROUP_KEYS = ["strategy", "space", "preset", "overrides", "estimator", "config_digest"]
# (collected column, table header, digits)
METRIC_COLUMNS = (
    ("kendall_tau", "tau", 3),
    ("spearman_rho", "rho", 3),
    ("kendall_tau_top1pct", "top-1% tau", 3),
    ("kendall_tau_top5pct", "top-5% tau", 3),
    ("sparse_kendall_tau", "sparse tau", 3),
    ("random_50_tau", "random-50 tau", 3),
    ("precision_at_10", "P@10", 2),
    ("precision_at_50", "P@50", 2),
    ("regret", "regret", 2),
    ("wall_seconds", "wall s", 0),
)


# The error decomposition (runs of a preset with a proxy truth): collected column, table header.
DECOMPOSITION_COLUMNS = (
    ("truth_tau_estimate_vs_benchmark", "tau vs benchmark"),
    ("truth_tau_estimate_vs_proxy", "tau vs proxy (weight-sharing error)"),
    ("truth_tau_proxy_vs_benchmark", "proxy vs benchmark (ceiling)"),
)


def decomposition_display(table: pd.DataFrame) -> pd.DataFrame:
    """One row per group that was scored against a proxy truth, the truth named in every row."""
    if table.empty or "proxy_truth" not in table:
        return pd.DataFrame()
    rows = table[table["proxy_truth"].fillna("").astype(str) != ""]
    out = pd.DataFrame({"strategy": rows["strategy"], "preset": rows["preset"], "n": rows["n"].astype(str),
                        "proxy truth": rows["proxy_truth"]})
    for column, header in DECOMPOSITION_COLUMNS:
        out[header] = [fmt_mean_std(m, s, 3) for m, s in zip(rows[f"{column}_mean"], rows[f"{column}_std"])]
    return out.reset_index(drop=True)


def is_training_free(strategy: str, total_steps: float = math.nan) -> bool:
    try:
        return bool(getattr(STRATEGIES.get(strategy), "training_free", False))
    except HarnessError:  # a run of a strategy this checkout does not register: judge by what it did
        return total_steps == 0


def _unique(values: Iterable) -> str:
    seen = [v for v in dict.fromkeys(values) if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return ",".join(str(v) for v in seen)


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """Numeric table: per group, n, seeds, <metric>_mean / <metric>_std, and descriptive columns. A re-run
    of the same identity (or seed) is counted once: see `duplicates`."""
    runs = mark_duplicates(runs) if "duplicate_of" not in runs else runs
    done = runs[(runs["state"] == "complete") & runs["duplicate_of"].isna()].copy()
    if done.empty:
        return pd.DataFrame(columns=[*GROUP_KEYS, "n", "seeds"])
    for key in GROUP_KEYS:
        done[key] = done[key].fillna("?").astype(str)
    rows = []
    for keys, group in done.groupby(GROUP_KEYS, sort=True, dropna=False):
        row = dict(zip(GROUP_KEYS, keys))
        row["n"] = len(group)
        row["seeds"] = _unique(sorted(int(s) for s in group["seed"] if s is not None and not pd.isna(s)))
        for column, _header, _digits in METRIC_COLUMNS:
            values = pd.to_numeric(group[column], errors="coerce").dropna()
            row[f"{column}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{column}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        for column, _header in DECOMPOSITION_COLUMNS:
            values = pd.to_numeric(group[column], errors="coerce").dropna() if column in group else pd.Series(dtype=float)
            row[f"{column}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{column}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        row["proxy_truth"] = _unique(group["proxy_truth"]) if "proxy_truth" in group else ""
        row["ground_truth_column"] = _unique(group["ground_truth_column"])
        row["bn_mode"] = _unique(group["bn_mode"])
        row["estimation_images"] = _unique(group["estimation_images"]) if "estimation_images" in group else "?"
        row["estimates_on_test"] = bool(group["estimates_on_test"].fillna(False).astype(bool).any()) if "estimates_on_test" in group else False
        row["git_commit"] = _unique(str(c)[:7] for c in group["git_commit"] if isinstance(c, str))
        row["training_free"] = is_training_free(row["strategy"], float(group["total_steps"].max()))
        rows.append(row)
    table = pd.DataFrame(rows)
    table["remark"] = _baseline_remarks(table)
    table = table.sort_values(["space", "preset", "training_free", "strategy", "overrides"], kind="stable")
    return table.reset_index(drop=True)


def _baseline_tau(table: pd.DataFrame, space: str, preset: str, column: str, overrides: str) -> float:
    """The baseline run with the same overrides (same scored set), else the preset's plain one."""
    rows = table[(table["strategy"] == BASELINE) & (table["space"] == space) & (table["preset"] == preset)
                 & (table["ground_truth_column"] == column)]
    for candidate in (rows[rows["overrides"] == overrides], rows[rows["overrides"] == ""]):
        if len(candidate):
            return float(candidate["kendall_tau_mean"].iloc[0])
    return math.nan


def _baseline_remarks(table: pd.DataFrame) -> list[str]:
    remarks = []
    for _, row in table.iterrows():
        if row["training_free"]:
            remarks.append("")
            continue
        base = _baseline_tau(table, row["space"], row["preset"], row["ground_truth_column"], row["overrides"])
        tau = row["kendall_tau_mean"]
        if math.isnan(base):
            remarks.append(f"no {BASELINE} baseline run for this preset")
        elif not math.isnan(tau) and tau < base:
            remarks.append(f"tau below the {BASELINE} baseline ({base:.3f})")
        else:
            remarks.append("")
    return remarks


def fmt_mean_std(mean: float, std: float, digits: int) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def preset_label(row: pd.Series, ambiguous: bool) -> str:
    label = str(row["preset"])
    if row["overrides"]:
        label += f" ({row['overrides']})"
    if ambiguous:
        label += f" [cfg {row['config_digest']}]"
    return label


def display(table: pd.DataFrame) -> pd.DataFrame:
    """Human-readable strings: one column per metric as 'mean ± std'."""
    if table.empty:
        return pd.DataFrame(columns=["strategy", "preset", "n", *[h for _, h, _ in METRIC_COLUMNS]])
    configs = table.groupby(["strategy", "space", "preset", "overrides"])["config_digest"].transform("nunique")
    out = pd.DataFrame({
        "strategy": table["strategy"],
        "preset": [preset_label(row, configs.iloc[i] > 1) for i, (_, row) in enumerate(table.iterrows())],
        "n": [(f"{n} ({seeds})" if seeds else str(n)) + (" n=1, no interval" if n == 1 else "")
              for n, seeds in zip(table["n"], table["seeds"])],
    })
    if table["space"].nunique() > 1:
        out.insert(1, "space", table["space"])
    for column, header, digits in METRIC_COLUMNS:
        out[header] = [fmt_mean_std(m, s, digits) for m, s in zip(table[f"{column}_mean"], table[f"{column}_std"])]
    out["ground truth"] = table["ground_truth_column"]
    out["estimator"] = table["estimator"]
    out["BN"] = table["bn_mode"]
    flagged = table["estimates_on_test"] if "estimates_on_test" in table else pd.Series(False, index=table.index)
    images = table["estimation_images"] if "estimation_images" in table else pd.Series("?", index=table.index)
    out["estimation images"] = [f"{i} (TEST)" if f else str(i) for i, f in zip(images, flagged)]
    out["commit"] = table["git_commit"].replace("", "-")
    out["remark"] = table["remark"]
    return out.reset_index(drop=True)


def to_markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_no runs_\n"
    return frame.to_markdown(index=False, disable_numparse=True) + "\n"


def to_latex(frame: pd.DataFrame, caption: str = "") -> str:
    """A booktabs tabular (no float environment: the paper decides placement)."""
    def esc(text: object) -> str:
        text = str(text)
        for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                     ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
            text = text.replace(a, b)
        return text.replace("±", r"$\pm$")

    header = " & ".join(esc(c) for c in frame.columns) + r" \\"
    body = [" & ".join(esc(v) for v in row) + r" \\" for row in frame.itertuples(index=False)]
    lines = []
    if caption:
        lines.append(f"% {caption}")
    lines += [r"\begin{tabular}{" + "l" * len(frame.columns) + "}", r"\toprule", header, r"\midrule", *body,
              r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def duplicates(runs: pd.DataFrame) -> pd.DataFrame:
    runs = mark_duplicates(runs) if "duplicate_of" not in runs else runs
    dup = runs[runs["duplicate_of"].notna()]
    return dup[["run", "duplicate_of", "seed", "kendall_tau"]].reset_index(drop=True)


def unfinished(runs: pd.DataFrame) -> pd.DataFrame:
    rest = runs[runs["state"] != "complete"]
    frame = rest[["run", "state", "step", "error"]].copy()
    frame["step"] = [("-" if pd.isna(s) else str(int(s))) for s in frame["step"]]
    frame["error"] = frame["error"].fillna("")
    # status.json says "running" until the run ends; a killed run keeps saying it.
    frame["state"] = frame["state"].replace("running", "running or interrupted")
    return frame.reset_index(drop=True)


def write_tables(runs: pd.DataFrame, out: Path, registered: list[str] | None = None) -> dict[str, Path]:
    """runs.md / runs.csv / runs.tex (aggregated) and all_runs.csv (one row per run directory)."""
    out = Path(out)
    table = aggregate(runs)
    shown = display(table)
    paths = {
        "markdown": out / "runs.md",
        "csv": out / "runs.csv",
        "latex": out / "runs.tex",
        "all_runs": out / "all_runs.csv",
    }
    parts = ["## Ranking quality by strategy and preset", "", to_markdown(shown)]
    parts.append(f"mean ± std over seeds (sample std, n-1): a spread, not an interval; n = seeds (which). "
                 f"Remarks flag a weight-sharing strategy whose mean tau is below `{BASELINE}` (parameter count) on the same "
                 f"preset, without a test. For 95% intervals and paired differences between strategies: `python -m harness compare`.")
    if len(table) and "estimates_on_test" in table and table["estimates_on_test"].any():
        parts += ["", "Rows marked (TEST) estimate on official test images (data.holdout_test=true): for a *_test ground-truth "
                      "column those are the very images that judge the ranking, a protocol the papers do not use."]
    decomposed = decomposition_display(table)
    if len(decomposed):
        parts += ["", "## Error decomposition against the proxy truth (same architectures in all three columns)", "",
                  to_markdown(decomposed),
                  "tau vs proxy: the estimate against the same architectures trained standalone on the preset's task (the "
                  "weight-sharing error alone); ceiling: that standalone truth against the benchmark. See docs/truth.md."]
    if registered is not None:
        ran = set(table["strategy"]) if len(table) else set()
        missing = [s for s in registered if s not in ran]
        if missing:
            parts += ["", f"Registered strategies not run: {', '.join(missing)}."]
    dup = duplicates(runs)
    if len(dup):
        parts += ["", "## Re-runs of a run above (same identity or seed; reported, not averaged)", "",
                  to_markdown(dup.astype({"kendall_tau": float}).round({"kendall_tau": 4}).astype(str))]
    rest = unfinished(runs)
    if len(rest):
        parts += ["", "## Runs not complete (excluded above)", "", to_markdown(rest)]
    write_text(paths["markdown"], "\n".join(parts) + "\n")
    paths["csv"].parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(paths["csv"], index=False, float_format="%.6g")
    write_text(paths["latex"], to_latex(shown, "generated by `python -m harness tables`"))
    runs.to_csv(paths["all_runs"], index=False, float_format="%.6g")
    return paths
