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
    """'0-4' -> 0..4, '0,2,5' -> those, '3' -> [3]; ranges and lists combine ('0-2,7') -- the syntax of every command."""
    from harness.runs.sweep import parse_seeds as parse

    return parse(text)


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
# The decision rule of every pair, named in paired.csv and in the documents quoting it.
TEST_NAME = "paired t-test on per-seed tau differences, two-sided 5%"


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


def _arch_variance(pairs: pd.DataFrame) -> tuple[float, int]:
    """(architecture-sampling variance of the mean tau difference, its df = architectures - 1) from the
    paired runs' predictions; (nan, 0) with fewer than 2 seeds or 4 architectures."""
    if len(pairs) < 2:
        return math.nan, 0
    est_a, est_b, truth = [], [], None
    for _, pair in pairs.iterrows():
        joined = _joined(pair)
        if truth is None:
            index, truth = joined["index"].to_numpy(), joined["ground_truth_a"].to_numpy()
        elif not np.array_equal(joined["index"].to_numpy(), index):
            raise HarnessError(f"seed {pair['seed']} scored other architectures than seed {pairs['seed'].iloc[0]}; "
                               "the search-space interval needs one fixed architecture set (compare runs of one preset)")
        est_a.append(joined["estimate_a"].to_numpy())
        est_b.append(joined["estimate_b"].to_numpy())
    if len(truth) < 4:
        return math.nan, 0
    return stats.arch_variance_of_mean_difference(est_a, est_b, truth), len(truth) - 1


def paired(rows: pd.DataFrame, variants: Sequence[Variant], reference: str) -> pd.DataFrame:
    """Per non-reference variant: tau(variant) - tau(reference) over the seeds both completed.

    The decision rule is the paired t-test on the per-seed differences (t_lo/t_hi, p_t: an interval and a p
    from one statistic), a claim about *these scored architectures* (seed noise only). space_lo/space_hi,
    p_space add the architecture-sampling variance of the mean difference (jackknife over architectures)
    for the claim about the *search space*. The sign-flip p is a robustness column, with the smallest p
    its seed count can reach; power figures are the exact noncentral-t power of the paired t-test."""
    out = []
    for v in variants:
        if v.label == reference:
            continue
        pairs = _pairs(rows, v.label, reference)
        d = stats.paired_differences(pairs["a"], pairs["b"]) if len(pairs) else np.array([])
        n = len(d)
        sd = float(np.std(d, ddof=1)) if n > 1 else math.nan
        test = stats.paired_t_test(d)
        arch_var, arch_df = _arch_variance(pairs)
        space = stats.two_source_t_test(d, arch_var, arch_df)
        out.append({"label": v.label, "reference": reference, "n": n, "seeds": ",".join(map(str, pairs["seed"])),
                    "mean_diff": test.mean, "sd_diff": sd,
                    "t_lo": test.low, "t_hi": test.high, "t": test.t, "df": test.df, "p_t": test.p,
                    "p_sign_flip": stats.sign_flip_p(d) if n else math.nan, "sign_flip_min_p": stats.sign_flip_min_p(n),
                    "archs": arch_df + 1 if arch_df else 0, "arch_sd_mean": math.sqrt(arch_var) if math.isfinite(arch_var) else math.nan,
                    "space_lo": space.low, "space_hi": space.high, "space_df": space.df, "p_space": space.p,
                    "mdd_80": stats.minimal_detectable_difference(sd, n),
                    "power_at_target": stats.paired_t_power(stats.TARGET_DIFFERENCE, sd, n),
                    "seeds_for_target": stats.seeds_needed(stats.TARGET_DIFFERENCE, sd)})
    return pd.DataFrame(out)


def _predictions(run_dir: str, column: str = "estimate", file: str = "predictions.csv") -> pd.DataFrame:
    path = Path(run_dir) / file
    if not path.is_file():
        raise HarnessError(f"{path} is missing; the run is not complete")
    column = column if isinstance(column, str) else "estimate"  # rows without a score column: the run's own score
    if file != "predictions.csv":  # the proxy truth's architectures, ranked against the proxy truth
        return pd.read_csv(path, usecols=["index", column, "proxy_truth"]).rename(columns={column: "estimate", "proxy_truth": "ground_truth"})
    return pd.read_csv(path, usecols=["index", column, "ground_truth"]).rename(columns={column: "estimate"})


def _joined(pair) -> pd.DataFrame:
    """The two runs of one seed side by side, joined on the ground-truth index (estimate_a, estimate_b, ...)."""
    a = _predictions(pair["a_dir"], pair["a_column"], pair["a_file"])
    b = _predictions(pair["b_dir"], pair["b_column"], pair["b_file"])
    joined = a.merge(b, on="index", suffixes=("_a", "_b")).sort_values("index", kind="stable")
    if not (len(joined) == len(a) == len(b)):
        raise HarnessError(f"{pair['a_dir']} and {pair['b_dir']} scored different architectures "
                           f"({len(a)} and {len(b)}, {len(joined)} shared); compare runs of one preset")
    return joined


def per_seed(rows: pd.DataFrame, variants: Sequence[Variant], reference: str, resamples: int = 1000) -> pd.DataFrame:
    """Within each seed: tau(variant) - tau(reference) on the same scored architectures (joined on the
    ground-truth index), with a paired bootstrap over architectures."""
    out = []
    for v in variants:
        if v.label == reference:
            continue
        for _, pair in _pairs(rows, v.label, reference).iterrows():
            joined = _joined(pair)
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


def _p(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def _seeds(value: float) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{int(value)}"


def show_paired(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "variant - reference": [f"{a} - {b}" for a, b in zip(table["label"], table["reference"])],
        "n (seeds)": [f"{n} ({s})" for n, s in zip(table["n"], table["seeds"])],
        "mean diff [paired-t 95%], these archs": [_ci(m, lo, hi, 3, n) for m, lo, hi, n in
                                                  zip(table["mean_diff"], table["t_lo"], table["t_hi"], table["n"])],
        "paired-t p": [_p(v) for v in table["p_t"]],
        "[95%] search space": [f"[{lo:.3f}, {hi:.3f}]" if math.isfinite(lo) else "-"
                               for lo, hi in zip(table["space_lo"], table["space_hi"])],
        "search-space p": [_p(v) for v in table["p_space"]],
        "paired sd": [_num(v, 3) for v in table["sd_diff"]],
        "sign-flip p (min at n)": [f"{_p(p)} ({_p(lo)})" if math.isfinite(p) else "-" for p, lo in
                                   zip(table["p_sign_flip"], table["sign_flip_min_p"])],
        "detectable at 80% power": [_num(v, 3) for v in table["mdd_80"]],
        f"seeds for {stats.TARGET_DIFFERENCE:g} at 80%": [_seeds(v) for v in table["seeds_for_target"]],
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


def verdict(table: pd.DataFrame, alpha: float = stats.ALPHA) -> list[str]:
    """One line per pair. The decision is the paired t-test about the scored architectures (its p and its
    interval agree by construction); the search-space test follows with its own p and interval."""
    lines = []
    for _, r in table.iterrows():
        a, b, n = r["label"], r["reference"], int(r["n"])
        if n < 2 or not math.isfinite(r["p_t"]):
            lines.append(f"{a} - {b}: {n} paired seed(s): no verdict possible")
            continue
        where = f"on these {int(r['archs'])} architectures" if r["archs"] else "on the scored architectures"
        ci = f"mean {r['mean_diff']:+.3f}, 95% [{r['t_lo']:+.3f}, {r['t_hi']:+.3f}]"
        if r["p_t"] < alpha:
            better, worse = (a, b) if r["mean_diff"] > 0 else (b, a)
            head = f"{better} ranks better than {worse} {where} (paired t p={_p(r['p_t'])}; {ci})"
        else:
            head = f"no detectable difference between {a} and {b} {where} (paired t p={_p(r['p_t'])}; {ci})"
        if math.isfinite(r["p_space"]):
            said = "differs" if r["p_space"] < alpha else "no detectable difference"
            head += (f"; about the search space: {said} (p={_p(r['p_space'])}, "
                     f"95% [{r['space_lo']:+.3f}, {r['space_hi']:+.3f}], {r['space_df']:.1f} df)")
        head += (f"; sign-flip p {_p(r['p_sign_flip'])} (smallest possible at n={n}: {_p(r['sign_flip_min_p'])})"
                 f"; 80% power at n={n} needs a true difference of {r['mdd_80']:.3f}"
                 f"; seeds needed to detect {stats.TARGET_DIFFERENCE:g} tau at 80% power at the measured paired sd "
                 f"{r['sd_diff']:.3f}: {_seeds(r['seeds_for_target'])}")
        lines.append(head)
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
                 arch_resamples: int = 1000) -> tuple[str, dict[str, Path]]:
    out = Path(out)
    by_variant = per_variant(rows, variants)
    pairs = paired(rows, variants, reference)
    seeds = per_seed(rows, variants, reference, arch_resamples)
    v_show, p_show, s_show = show_variants(by_variant), show_paired(pairs), show_per_seed(seeds)
    truth = truth_name(rows)
    if not pairs.empty:  # paired.csv names what it is about, so a copy under results/summaries/ stands alone
        pairs.insert(2, "truth", truth)
        pairs.insert(3, "estimator", ",".join(dict.fromkeys(str(e) for e in _done(rows)["estimator"].dropna())))
        pairs.insert(4, "test", TEST_NAME)
    for shown in (v_show, p_show, s_show):  # the truth every tau was measured against, named in every row
        if not shown.empty:
            shown.insert(1, "truth", truth)
    failed = rows[rows["state"] != "complete"]
    parts = [f"## {title}", "", "### Per strategy: mean [95% t-interval over seeds]", "", to_markdown(v_show),
             f"### Paired differences in tau against `{reference}` (same seeds)", "", to_markdown(p_show),
             "Decision rule: the paired t-test on the per-seed tau differences (two-sided, 5%); its interval and p come "
             "from the same t statistic, so the interval excludes 0 exactly when p < 0.05. "
             "Populations: *these archs* is about the fixed set of architectures every seed scored (seed noise only: "
             "equals scipy.stats.ttest_rel on the listed taus); *search space* also counts the architecture-sampling "
             "variance of the mean difference (jackknife over architectures, shared by every seed), with "
             "Welch-Satterthwaite degrees of freedom. The verdict's headline is about these architectures. "
             "Sign-flip p: exact over all 2^n sign patterns, a robustness check that cannot go below 2/2^n. "
             f"Power: exact noncentral-t power of the paired t-test; detectable at 80% power: the true difference it "
             f"finds 80% of the time with these seeds; seeds for {stats.TARGET_DIFFERENCE:g}: the fewest seeds that "
             f"find a {stats.TARGET_DIFFERENCE:g} tau difference 80% of the time at the measured paired sd.", "",
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
    pairs.to_csv(paths["paired_csv"], index=False, float_format="%.17g")  # full precision: rechecked against scipy
    seeds.to_csv(paths["per_seed_csv"], index=False, float_format="%.17g")
    rows.to_csv(paths["runs_csv"], index=False, float_format="%.6g")
    latex = to_latex(v_show, f"{title}: per strategy, mean [95% t-interval]")
    if not p_show.empty:
        latex += "\n" + to_latex(p_show, f"paired differences against {reference}")
    write_text(paths["latex"], latex)
    paths["figure"] = figure(rows, variants, out / "compare.png")
    return text, paths
