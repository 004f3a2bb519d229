"""The verdict between strategies (or named variants) run on the same seeds, with its uncertainty.

A variant is a label + strategy + overrides; every variant runs the same preset, space, shared overrides
and seeds, so run (variant, seed) and (reference, seed) differ only in what the variant changes: their
difference is paired. Runs are found by identity (their run directory is named from strategy, preset,
seed and overrides), never pooled across configurations. Statistics live in harness.scoring.stats.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harness.scoring import stats  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.runs.fileio import read_json, write_text  # noqa: E402
from harness.reports.tables import to_latex, to_markdown  # noqa: E402
from harness.runs.sweep import Cell, CellResult  # noqa: E402

# (metrics.json key, header, digits)
METRICS = (
    ("kendall_tau", "tau", 3),
    ("spearman_rho", "Spearman", 3),
    ("kendall_tau_top5pct", "top-5% tau", 3),
    ("regret", "regret", 2),
)
_LABEL = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass(frozen=True)
class Variant:
    label: str
    strategy: str
    overrides: tuple[str, ...] = ()


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> 0..4, '0,2,5' -> those, '3' -> [3]; ranges and lists combine ('0-2,7')."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise HarnessError(f"seeds {text!r}: bad part {part!r}; accepted: N, N-M (M >= N), comma-separated")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        seeds.extend(s for s in range(lo, hi + 1) if s not in seeds)
    return seeds


def parse_variant(text: str) -> Variant:
    """'LABEL=STRATEGY[:SECTION.KEY=VALUE[:SECTION.KEY=VALUE...]]', e.g. 'ctl=ws:train.lr=0.015'."""
    label, sep, rest = text.partition("=")
    strategy, *overrides = rest.split(":")
    if not sep or not _LABEL.match(label) or not strategy or any("=" not in o or o.startswith("=") for o in overrides):
        raise HarnessError(f"variant {text!r}: expected LABEL=STRATEGY[:SECTION.KEY=VALUE]... (label of letters, digits, _.+-)")
    return Variant(label, strategy, tuple(overrides))


def variants_from(strategies: Sequence[str], variant_texts: Sequence[str]) -> list[Variant]:
    out = [Variant(s, s) for s in strategies] + [parse_variant(t) for t in variant_texts]
    labels = [v.label for v in out]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise HarnessError(f"variant labels {dupes} appear twice; give each variant its own label")
    if len(out) < 2:
        raise HarnessError(f"compare needs at least 2 strategies or variants, got {labels}")
    return out


def make_cells(variants: Sequence[Variant], seeds: Sequence[int], preset: str, space: str = "nb201",
               shared: Sequence[str] = ()) -> list[Cell]:
    """Unlabelled cells: their run directories are named as `bench` names them (strategy, preset, seed, hash
    of the overrides), so runs made by hand, by `paper` or by an earlier compare are reused, not repeated."""
    return [Cell(v.strategy, space, preset, seed, tuple(shared) + v.overrides) for v in variants for seed in seeds]


def cell_labels(variants: Sequence[Variant], seeds: Sequence[int]) -> list[str]:
    """The variant label of each cell of make_cells, in the same order."""
    return [v.label for v in variants for _seed in seeds]


TRUTHS = ("benchmark", "proxy")


def read_results(results: Sequence[CellResult], labels: Sequence[str] | None = None, estimator: str | None = None,
                 truth: str = "benchmark") -> pd.DataFrame:
    """One row per cell: label, seed, state, error, run_dir and the METRICS of complete runs.

    estimator: take the metrics of that estimator from runs made with eval.all_estimators=true (and, within
    each seed, its `score_<estimator>` predictions column) instead of the run's own score."""
    rows = []
    for i, r in enumerate(results):
        label = labels[i] if labels is not None else (r.cell.label or r.cell.strategy)
        row = {"label": label, "strategy": r.cell.strategy, "seed": r.cell.seed,
               "state": r.state, "error": r.error, "run_dir": str(r.run_dir), "truth": truth, "predictions_file": "predictions.csv"}
        metrics_path = Path(r.run_dir) / "metrics.json"
        if r.state == "complete" and metrics_path.is_file():
            record = read_json(metrics_path)
            row["estimator"] = record.get("estimator", "final-accuracy")  # unrecorded: made before EMA/flips existed
            metrics = record.get("metrics", {})
            row["score_column"] = "estimate"
            if estimator is not None:
                reports = record.get("estimators", {}).get("estimators", {})
                if estimator not in reports:
                    raise HarnessError(f"--estimator {estimator!r}: {r.run_dir} has no such estimator (accepted: "
                                       f"{', '.join(sorted(reports)) or 'none: made without eval.all_estimators=true'})")
                metrics, row["estimator"], row["score_column"] = reports[estimator], estimator, f"score_{estimator}"
            if truth == "proxy":
                metrics, row["truth"], row["predictions_file"] = _proxy_metrics(record, r.run_dir, estimator)
            for key, _h, _d in METRICS:
                value = metrics.get(key)
                row[key] = math.nan if value is None else float(value)
        else:
            row["state"] = "failed" if r.state == "complete" else r.state
        rows.append(row)
    return pd.DataFrame(rows, columns=["label", "strategy", "seed", "state", "error", "run_dir", "truth", "predictions_file",
                                       "estimator", "score_column", *(k for k, _h, _d in METRICS)])


def truth_name(rows: pd.DataFrame) -> str:
    """`benchmark`, or `proxy:<table>`: what the taus of these rows were measured against."""
    names = [str(t) for t in dict.fromkeys(rows["truth"].dropna())] if "truth" in rows else []
    done = [str(t) for t in dict.fromkeys(rows.loc[rows["state"] == "complete", "truth"].dropna())] if "truth" in rows else []
    return ",".join(done or names) or "benchmark"


def _proxy_metrics(record: dict, run_dir, estimator: str | None) -> tuple[dict, str, str]:
    """The estimate-vs-proxy-truth metrics of a run (the weight-sharing error), the truth's name, its predictions file."""
    if estimator is not None:
        raise HarnessError("--truth proxy compares the runs' own scores; it does not combine with --estimator")
    decomposition = record.get("truth_decomposition")
    if not decomposition:
        raise HarnessError(f"--truth proxy: {run_dir} has no error decomposition ({record.get('truth_decomposition_note') or 'no proxy truth for its preset'}); "
                           f"build one with `python -m harness truth build --preset {record.get('preset')}` and rerun, or use --truth benchmark")
    return decomposition["estimate_vs_proxy"], f"proxy:{decomposition['proxy_truth']}", "truth_predictions.csv"


def _done(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["state"] == "complete"]


def per_variant(rows: pd.DataFrame, variants: Sequence[Variant]) -> pd.DataFrame:
    out = []
    done = _done(rows)
    for v in variants:
        mine = done[done["label"] == v.label].sort_values("seed")
        row = {"label": v.label, "strategy": v.strategy, "overrides": " ".join(v.overrides), "n": len(mine),
               "seeds": ",".join(str(int(s)) for s in mine["seed"]),
               "estimator": ",".join(dict.fromkeys(str(e) for e in mine["estimator"].dropna()))}
        for key, _h, _d in METRICS:
            values = mine[key].dropna().to_numpy()
            mean, lo, hi = stats.t_interval(values) if len(values) else (math.nan,) * 3
            sd = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
            row.update({f"{key}_mean": mean, f"{key}_sd": sd, f"{key}_lo": lo, f"{key}_hi": hi})
        out.append(row)
    return pd.DataFrame(out)


def _pairs(rows: pd.DataFrame, label: str, reference: str) -> pd.DataFrame:
    done = _done(rows)
    a = done[done["label"] == label].set_index("seed")
    b = done[done["label"] == reference].set_index("seed")
    seeds = sorted(set(a.index) & set(b.index))
    return pd.DataFrame({"seed": seeds, "a_dir": [a.loc[s, "run_dir"] for s in seeds],
                         "b_dir": [b.loc[s, "run_dir"] for s in seeds],
                         "a_column": [a.loc[s, "score_column"] for s in seeds], "b_column": [b.loc[s, "score_column"] for s in seeds],
                         "a_file": [a.loc[s, "predictions_file"] for s in seeds], "b_file": [b.loc[s, "predictions_file"] for s in seeds],
                         "a": [a.loc[s, "kendall_tau"] for s in seeds], "b": [b.loc[s, "kendall_tau"] for s in seeds]})


def paired(rows: pd.DataFrame, variants: Sequence[Variant], reference: str, resamples: int = 10000, seed: int = 0) -> pd.DataFrame:
    """Per non-reference variant: tau(variant) - tau(reference) over the seeds both completed."""
    out = []
    for v in variants:
        if v.label == reference:
            continue
        pairs = _pairs(rows, v.label, reference)
        d = stats.paired_differences(pairs["a"], pairs["b"]) if len(pairs) else np.array([])
        sd = float(np.std(d, ddof=1)) if len(d) > 1 else math.nan
        lo, hi = stats.bootstrap_mean_interval(d, resamples, seed) if len(d) else stats.NAN2
        out.append({"label": v.label, "reference": reference, "n": len(d), "seeds": ",".join(map(str, pairs["seed"])),
                    "mean_diff": float(d.mean()) if len(d) else math.nan, "sd_diff": sd, "boot_lo": lo, "boot_hi": hi,
                    "p_sign_flip": stats.sign_flip_p(d), "mdd_80": stats.minimal_detectable_difference(sd, len(d))})
    return pd.DataFrame(out)


def _predictions(run_dir: str, column: str = "estimate", file: str = "predictions.csv") -> pd.DataFrame:
    path = Path(run_dir) / file
    if not path.is_file():
        raise HarnessError(f"{path} is missing; the run is not complete")
    column = column if isinstance(column, str) else "estimate"  # rows without a score column: the run's own score
    if file != "predictions.csv":  # the proxy truth's architectures, ranked against the proxy truth
        return pd.read_csv(path, usecols=["index", column, "proxy_truth"]).rename(columns={column: "estimate", "proxy_truth": "ground_truth"})
    return pd.read_csv(path, usecols=["index", column, "ground_truth"]).rename(columns={column: "estimate"})


def per_seed(rows: pd.DataFrame, variants: Sequence[Variant], reference: str, resamples: int = 1000) -> pd.DataFrame:
    """Within each seed: tau(variant) - tau(reference) on the same scored architectures (joined on the
    ground-truth index), with a paired bootstrap over architectures."""
    out = []
    for v in variants:
        if v.label == reference:
            continue
        for _, pair in _pairs(rows, v.label, reference).iterrows():
            a, b = _predictions(pair["a_dir"], pair["a_column"], pair["a_file"]), _predictions(pair["b_dir"], pair["b_column"], pair["b_file"])
            joined = a.merge(b, on="index", suffixes=("_a", "_b"))
            if not (len(joined) == len(a) == len(b)):
                raise HarnessError(f"{pair['a_dir']} and {pair['b_dir']} scored different architectures "
                                   f"({len(a)} and {len(b)}, {len(joined)} shared); compare runs of one preset")
            diff, lo, hi = stats.arch_bootstrap_tau_difference(joined["estimate_a"], joined["estimate_b"],
                                                               joined["ground_truth_a"], resamples, int(pair["seed"]))
            out.append({"label": v.label, "reference": reference, "seed": int(pair["seed"]), "archs": len(joined),
                        "tau": float(pair["a"]), "tau_reference": float(pair["b"]), "diff": diff, "arch_lo": lo, "arch_hi": hi})
    return pd.DataFrame(out, columns=["label", "reference", "seed", "archs", "tau", "tau_reference", "diff", "arch_lo", "arch_hi"])


# ---- rendering ---------------------------------------------------------------------------------------------
def _num(value: float, digits: int) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _ci(mean: float, lo: float, hi: float, digits: int, n: int) -> str:
    if not math.isfinite(mean):
        return "-"
    if n < 2 or not math.isfinite(lo):
        return f"{mean:.{digits}f} (n=1, no interval)"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def show_variants(table: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"variant": table["label"], "strategy": table["strategy"],
                        "overrides": table["overrides"].replace("", "-"),
                        "estimator": table["estimator"].replace("", "-"),
                        "n (seeds)": [f"{n} ({s})" for n, s in zip(table["n"], table["seeds"])]})
    for key, header, digits in METRICS:
        out[header] = [_ci(r[f"{key}_mean"], r[f"{key}_lo"], r[f"{key}_hi"], digits, r["n"]) for _, r in table.iterrows()]
    out["tau seed sd"] = [_num(v, 3) for v in table["kendall_tau_sd"]]
    return out


def show_paired(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "variant - reference": [f"{a} - {b}" for a, b in zip(table["label"], table["reference"])],
        "n (seeds)": [f"{n} ({s})" for n, s in zip(table["n"], table["seeds"])],
        "mean diff [bootstrap 95%]": [_ci(m, lo, hi, 3, n) for m, lo, hi, n in
                                      zip(table["mean_diff"], table["boot_lo"], table["boot_hi"], table["n"])],
        "paired sd": [_num(v, 3) for v in table["sd_diff"]],
        "sign-flip p": [_num(v, 3) for v in table["p_sign_flip"]],
        "detectable at 80% power": [_num(v, 3) for v in table["mdd_80"]],
    })


def show_per_seed(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "variant - reference": [f"{a} - {b}" for a, b in zip(table["label"], table["reference"])],
        "seed": table["seed"].astype(str),
        "archs": table["archs"].astype(str),
        "tau": [_num(v, 3) for v in table["tau"]],
        "tau (reference)": [_num(v, 3) for v in table["tau_reference"]],
        "diff [architecture bootstrap 95%]": [_ci(d, lo, hi, 3, 2) for d, lo, hi in zip(table["diff"], table["arch_lo"], table["arch_hi"])],
    })


def verdict(table: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    lines = []
    for _, r in table.iterrows():
        name = f"{r['label']} - {r['reference']}"
        if r["n"] < 2:
            lines.append(f"{name}: {r['n']} paired seed(s): no verdict possible")
        elif r["p_sign_flip"] <= alpha:
            lines.append(f"{name}: {'better' if r['mean_diff'] > 0 else 'worse'} (mean {r['mean_diff']:+.3f}, sign-flip p {r['p_sign_flip']:.3f} <= {alpha})")
        else:
            floor = 2 / 2 ** r["n"]
            why = f" ({r['n']} seeds cannot give p below {floor:.3f})" if floor > alpha else ""
            lines.append(f"{name}: not significant at 5% (mean {r['mean_diff']:+.3f}, sign-flip p {r['p_sign_flip']:.3f}{why}); "
                         f"differences below {r['mdd_80']:.3f} would go undetected at 80% power")
    return lines


def figure(rows: pd.DataFrame, variants: Sequence[Variant], path: Path) -> Path:
    """Per-seed tau per variant, a line per seed joining its variants (the pairing), and mean with 95% t-interval."""
    done = _done(rows)
    labels = [v.label for v in variants]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(labels), 3.6))
    cmap = plt.get_cmap("tab10")
    for i, seed in enumerate(sorted(done["seed"].unique())):
        mine = done[done["seed"] == seed].set_index("label")
        xs = [j for j, lab in enumerate(labels) if lab in mine.index]
        ys = [mine.loc[labels[j], "kendall_tau"] for j in xs]
        ax.plot(xs, ys, "-o", color=cmap(i % 10), alpha=0.55, ms=4, lw=1, label=f"seed {seed}")
    for j, lab in enumerate(labels):
        values = done[done["label"] == lab]["kendall_tau"].dropna().to_numpy()
        if len(values) == 0:
            continue
        mean, lo, hi = stats.t_interval(values)
        yerr = None if not math.isfinite(lo) else [[mean - lo], [hi - mean]]
        ax.errorbar([j + 0.18], [mean], yerr=yerr, fmt="D", color="black", capsize=4, ms=5)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlim(-0.5, len(labels) - 0.3)
    ax.set_ylabel("Kendall tau")
    ax.set_title("per seed (lines pair seeds); black: mean, 95% t-interval", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def write_report(rows: pd.DataFrame, variants: Sequence[Variant], reference: str, out: Path, title: str,
                 resamples: int = 10000, arch_resamples: int = 1000) -> tuple[str, dict[str, Path]]:
    out = Path(out)
    by_variant = per_variant(rows, variants)
    pairs = paired(rows, variants, reference, resamples)
    seeds = per_seed(rows, variants, reference, arch_resamples)
    v_show, p_show, s_show = show_variants(by_variant), show_paired(pairs), show_per_seed(seeds)
    truth = truth_name(rows)
    for shown in (v_show, p_show, s_show):  # the truth every tau was measured against, named in every row
        if not shown.empty:
            shown.insert(1, "truth", truth)
    failed = rows[rows["state"] != "complete"]
    parts = [f"## {title}", "", "### Per strategy: mean [95% t-interval over seeds]", "", to_markdown(v_show),
             f"### Paired differences in tau against `{reference}` (same seeds)", "", to_markdown(p_show),
             f"Bootstrap: {resamples} resamples of the seed pairs. Sign-flip p: exact, all 2^n sign patterns (two-sided). "
             "Detectable at 80% power: (t_{0.975,n-1} + t_{0.8,n-1}) * paired sd / sqrt(n).", "",
             "### Within each seed: tau difference on the same scored architectures", "", to_markdown(s_show),
             f"Architecture bootstrap ({arch_resamples} resamples): resampled architecture indices, both taus recomputed on each draw; "
             "it shows the scored-set noise of one seed, not the seed-to-seed noise.", "",
             f"### Verdict (against the {truth} truth)", "", *(f"- {line} [truth: {truth}]" for line in verdict(pairs))]
    if len(failed):
        parts += ["", "### Runs not complete (left out above)", "",
                  to_markdown(failed[["label", "seed", "state", "error"]].fillna("").astype(str))]
    text = "\n".join(parts) + "\n"
    paths = {"markdown": out / "compare.md", "strategies_csv": out / "strategies.csv", "paired_csv": out / "paired.csv",
             "per_seed_csv": out / "per_seed.csv", "runs_csv": out / "runs.csv", "latex": out / "compare.tex"}
    write_text(paths["markdown"], text)
    by_variant.to_csv(paths["strategies_csv"], index=False, float_format="%.6g")
    pairs.to_csv(paths["paired_csv"], index=False, float_format="%.6g")
    seeds.to_csv(paths["per_seed_csv"], index=False, float_format="%.6g")
    rows.to_csv(paths["runs_csv"], index=False, float_format="%.6g")
    latex = to_latex(v_show, f"{title}: per strategy, mean [95% t-interval]")
    if not p_show.empty:
        latex += "\n" + to_latex(p_show, f"paired differences against {reference}")
    write_text(paths["latex"], latex)
    paths["figure"] = figure(rows, variants, out / "compare.png")
    return text, paths
