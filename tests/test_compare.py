"""`compare`: variants and seeds parse strictly, runs pair by seed and by architecture, every number carries
its interval, and the report files are written (fake run directories; one real smoke comparison)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from harness.scoring import stats
from harness.cli import main
from harness.errors import HarnessError
from harness.reports import compare as cmp
from harness.runs.sweep import Cell, CellResult

TRUTH = np.arange(12.0)


def test_parse_seeds():
    assert cmp.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert cmp.parse_seeds("0,2,5") == [0, 2, 5]
    assert cmp.parse_seeds("0-2,7,1") == [0, 1, 2, 7]
    for bad in ("", "a", "3-1", "1-", "-1"):
        with pytest.raises(HarnessError, match="seeds"):
            cmp.parse_seeds(bad)


def test_parse_variants():
    assert cmp.parse_variant("ctl=ws:train.lr=0.015") == cmp.Variant("ctl", "ws", ("train.lr=0.015",))
    assert cmp.parse_variant("g=dinas:strategy.dinas.variant=grad:strategy.dinas.decay=0.9").overrides == (
        "strategy.dinas.variant=grad", "strategy.dinas.decay=0.9")
    assert cmp.parse_variant("plain=ws") == cmp.Variant("plain", "ws", ())
    for bad in ("ws", "=ws", "a b=ws", "x=ws:train.lr", "x="):
        with pytest.raises(HarnessError, match="LABEL=STRATEGY"):
            cmp.parse_variant(bad)
    with pytest.raises(HarnessError, match="appear twice"):
        cmp.variants_from(["ws"], ["ws=ws:train.lr=0.01"])
    with pytest.raises(HarnessError, match="at least 2"):
        cmp.variants_from(["ws"], [])


def test_cells_share_preset_and_overrides_and_differ_only_by_variant():
    variants = cmp.variants_from(["ws"], ["ctl=ws:train.lr=0.01"])
    cells = cmp.make_cells(variants, [0, 1], "mini", shared=("train.epochs=5",))
    assert cells[0] == Cell("ws", "nb201", "mini", 0, ("train.epochs=5",))
    assert cells[3] == Cell("ws", "nb201", "mini", 1, ("train.epochs=5", "train.lr=0.01"))
    assert cmp.cell_labels(variants, [0, 1]) == ["ws", "ws", "ctl", "ctl"]


def test_compare_reuses_runs_named_as_bench_names_them(tmp_path):
    from harness.runs.run import BenchRequest, run_name
    from harness.runs.sweep import cell_request

    variants = cmp.variants_from(["ws"], ["ctl=ws:strategy.ws.lr_scale=0.5"])
    for cell in cmp.make_cells(variants, [0], "mini"):
        made_by_bench = run_name(BenchRequest(strategy=cell.strategy, preset="mini", seed=0, overrides=cell.overrides))
        assert cell_request(cell, tmp_path).name is None and run_name(cell_request(cell, tmp_path)) == made_by_bench


def _run(root: Path, label: str, seed: int, estimate: np.ndarray, index=None, state="complete") -> CellResult:
    d = root / f"{label}-seed{seed}"
    d.mkdir(parents=True)
    index = np.arange(len(estimate)) if index is None else index
    pd.DataFrame({"index": index, "arch": "x", "estimate": estimate, "ground_truth": TRUTH[: len(estimate)]}).to_csv(d / "predictions.csv", index=False)
    tau = stats.kendall(estimate, TRUTH[: len(estimate)])
    metrics = {"kendall_tau": tau, "spearman_rho": tau + 0.1, "kendall_tau_top5pct": None, "regret": 1.0 + seed}
    (d / "metrics.json").write_text(json.dumps({"metrics": metrics}))
    return CellResult(Cell(label, seed=seed, label=label), d, state, None if state == "complete" else "boom", tau)


def _noisy(seed: int, scale: float) -> np.ndarray:
    return TRUTH + np.random.default_rng(seed).normal(scale=scale, size=len(TRUTH))


@pytest.fixture
def results(tmp_path):
    out = []
    for seed in range(3):
        out.append(_run(tmp_path, "a", seed, _noisy(seed, 2.0)))
        out.append(_run(tmp_path, "b", seed, _noisy(seed + 10, 6.0)))
    out.append(_run(tmp_path, "solo", 0, _noisy(20, 3.0)))
    return out


VARIANTS = [cmp.Variant("a", "a"), cmp.Variant("b", "b"), cmp.Variant("solo", "solo")]


def test_per_variant_t_intervals_over_seeds(results):
    rows = cmp.read_results(results)
    table = cmp.per_variant(rows, VARIANTS).set_index("label")
    taus = [stats.kendall(_noisy(s, 2.0), TRUTH) for s in range(3)]
    mean, lo, hi = stats.t_interval(taus)
    assert table.loc["a", "n"] == 3 and table.loc["a", "seeds"] == "0,1,2"
    assert (table.loc["a", "kendall_tau_mean"], table.loc["a", "kendall_tau_lo"], table.loc["a", "kendall_tau_hi"]) == pytest.approx((mean, lo, hi))
    assert table.loc["a", "regret_mean"] == pytest.approx(2.0)
    assert table.loc["solo", "n"] == 1 and math.isnan(table.loc["solo", "kendall_tau_lo"])
    shown = cmp.show_variants(cmp.per_variant(rows, VARIANTS)).set_index("variant")
    assert shown.loc["solo", "tau"].endswith("(n=1, no interval)") and "[" in shown.loc["a", "tau"]


def test_paired_differences_on_shared_seeds(results):
    rows = cmp.read_results(results)
    table = cmp.paired(rows, VARIANTS, "a").set_index("label")
    b_taus = np.array([stats.kendall(_noisy(s + 10, 6.0), TRUTH) for s in range(3)])
    a_taus = np.array([stats.kendall(_noisy(s, 2.0), TRUTH) for s in range(3)])
    d = b_taus - a_taus
    row = table.loc["b"]
    assert row["n"] == 3 and row["mean_diff"] == pytest.approx(d.mean()) and row["sd_diff"] == pytest.approx(d.std(ddof=1))
    ref = sps.ttest_rel(b_taus, a_taus)
    assert (row["t_lo"], row["t_hi"]) == pytest.approx(tuple(ref.confidence_interval())) and row["p_t"] == pytest.approx(ref.pvalue)
    assert row["p_sign_flip"] == stats.sign_flip_p(d) and row["sign_flip_min_p"] == 0.25
    assert row["mdd_80"] == pytest.approx(stats.minimal_detectable_difference(d.std(ddof=1), 3))
    assert row["seeds_for_target"] == stats.seeds_needed(0.05, d.std(ddof=1))
    # search space: the seed variance of the mean plus the jackknife architecture variance of the mean difference
    est_a = [_noisy(s, 2.0) for s in range(3)]
    est_b = [_noisy(s + 10, 6.0) for s in range(3)]
    arch_var = stats.arch_variance_of_mean_difference(est_b, est_a, TRUTH)
    space = stats.two_source_t_test(d, arch_var, len(TRUTH) - 1)
    assert row["archs"] == 12 and row["arch_sd_mean"] == pytest.approx(math.sqrt(arch_var))
    assert (row["space_lo"], row["space_hi"], row["p_space"]) == pytest.approx((space.low, space.high, space.p))
    assert table.loc["solo", "n"] == 1 and math.isnan(table.loc["solo", "sd_diff"]) and math.isnan(table.loc["solo", "p_t"])


def test_csv_interval_equals_scipy_ttest_rel_on_the_per_seed_taus_it_lists(results, tmp_path):
    """The acceptance check: paired.csv's interval and p are ttest_rel on per_seed.csv's taus."""
    _text, paths = cmp.write_report(cmp.read_results(results), VARIANTS, "a", tmp_path / "out", "test", arch_resamples=20)
    pairs = pd.read_csv(paths["paired_csv"]).set_index("label")
    seeds = pd.read_csv(paths["per_seed_csv"])
    mine = seeds[seeds["label"] == "b"].sort_values("seed")
    ref = sps.ttest_rel(mine["tau"], mine["tau_reference"])
    low, high = ref.confidence_interval()
    assert pairs.loc["b", "t_lo"] == pytest.approx(low, rel=1e-12) and pairs.loc["b", "t_hi"] == pytest.approx(high, rel=1e-12)
    assert pairs.loc["b", "p_t"] == pytest.approx(ref.pvalue, rel=1e-12)


def test_verdict_wording_follows_the_one_test():
    def row(**kw):
        base = dict(label="b", reference="a", n=5, archs=500, mean_diff=0.03, sd_diff=0.02, t_lo=0.005, t_hi=0.055, p_t=0.03,
                    p_space=0.2, space_lo=-0.02, space_hi=0.08, space_df=9.3, p_sign_flip=0.0625, sign_flip_min_p=0.0625,
                    mdd_80=0.034, seeds_for_target=6)
        base.update(kw)
        return base

    lines = cmp.verdict(pd.DataFrame([row(), row(mean_diff=-0.036, t_lo=-0.090, t_hi=0.020, p_t=0.149, p_space=0.2),
                                      row(n=1, p_t=math.nan)]))
    assert lines[0].startswith("b ranks better than a on these 500 architectures (paired t p=0.030")
    assert "about the search space: no detectable difference (p=0.200" in lines[0]
    assert "sign-flip p 0.062 (smallest possible at n=5: 0.062)" in lines[0]
    assert "seeds needed to detect 0.05 tau at 80% power at the measured paired sd 0.020: 6" in lines[0]
    assert lines[1].startswith("no detectable difference between b and a on these 500 architectures (paired t p=0.149; "
                               "mean -0.036, 95% [-0.090, +0.020])")
    assert lines[2] == "b - a: 1 paired seed(s): no verdict possible"
    negative = cmp.verdict(pd.DataFrame([row(mean_diff=-0.03, t_lo=-0.055, t_hi=-0.005)]))[0]
    assert negative.startswith("a ranks better than b")


def test_per_seed_architecture_bootstrap_joins_on_the_architecture_index(tmp_path):
    est_a, est_b = _noisy(1, 2.0), _noisy(2, 6.0)
    order = np.random.default_rng(0).permutation(len(TRUTH))
    a = _run(tmp_path, "a", 0, est_a)
    b_dir = tmp_path / "b-seed0"
    b_dir.mkdir()
    # the same architectures, listed in another order: the join must pair them by index
    pd.DataFrame({"index": order, "estimate": est_b[order], "ground_truth": TRUTH[order]}).to_csv(b_dir / "predictions.csv", index=False)
    (b_dir / "metrics.json").write_text(json.dumps({"metrics": {"kendall_tau": stats.kendall(est_b, TRUTH)}}))
    b = CellResult(Cell("b", seed=0, label="b"), b_dir, "complete", None, 0.0)
    rows = cmp.read_results([a, b])
    table = cmp.per_seed(rows, VARIANTS[:2], "a", resamples=200)
    expected = stats.arch_bootstrap_tau_difference(est_b, est_a, TRUTH, 200, 0)
    assert table.loc[0, "diff"] == pytest.approx(expected[0]) and table.loc[0, "archs"] == 12
    c = _run(tmp_path, "c", 0, _noisy(3, 1.0), index=np.arange(100, 112))
    with pytest.raises(HarnessError, match="scored different architectures"):
        cmp.per_seed(cmp.read_results([a, c]), [cmp.Variant("a", "a"), cmp.Variant("c", "c")], "a")


def test_failed_runs_are_left_out_and_listed(results, tmp_path):
    results.append(_run(tmp_path, "b", 7, _noisy(7, 1.0), state="failed"))
    rows = cmp.read_results(results)
    assert cmp.per_variant(rows, VARIANTS).set_index("label").loc["b", "n"] == 3
    text, paths = cmp.write_report(rows, VARIANTS, "a", tmp_path / "out", "test", arch_resamples=50)
    assert "Runs not complete" in text and "boom" in text
    for key in ("markdown", "strategies_csv", "paired_csv", "per_seed_csv", "latex", "figure"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0
    assert "sign-flip p" in text and "b - a" in text and "smallest possible at n=3: 0.250" in text
    assert "[bootstrap 95%]" not in text and "paired-t 95%" in text and "search space" in text


def test_cli_rejects_bad_input_before_running(tmp_path, monkeypatch, capsys):
    ran = []
    monkeypatch.setattr("harness.runs.sweep.run_cells", lambda *a, **k: ran.append(1) or [])
    assert main(["compare", "--strategies", "ws,nope", "--seeds", "0,1", "--preset", "smoke"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["compare", "--strategies", "ws,params", "--reference", "dinas", "--preset", "smoke"]) == 2
    assert main(["compare", "--strategies", "ws", "--variants", "x=ws:train.lr=-1", "--preset", "smoke"]) == 2
    assert "train.lr" in capsys.readouterr().err
    assert main(["compare", "--strategies", "ws", "--variants", "x=dinas:strategy.dinas.variant=bogus", "--preset", "smoke"]) == 2
    assert "bogus" in capsys.readouterr().err
    assert ran == []


def test_real_smoke_comparison_prints_tables_and_writes_the_figure(env_data, tmp_path, capsys, monkeypatch):
    args = ["compare", "--strategies", "ws,params", "--seeds", "0,1", "--preset", "smoke", "--runs-dir", str(tmp_path / "runs"),
            "--out", str(tmp_path / "out"), "--arch-bootstrap", "50"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "### Per strategy" in out and "params - ws" in out and (tmp_path / "out" / "compare.png").is_file()
    # a second call finds the runs and runs nothing again; --summary copies its paired.csv where `make docs` reads it
    monkeypatch.chdir(tmp_path)
    assert main(args + ["--summary", "smoke_verdict"]) == 0
    assert "(rendered by `make docs`)" in capsys.readouterr().out
    from harness.reports.docs import fill
    said = fill("<!-- generated:verdict/smoke_verdict -->\n<!-- /generated -->\n", tmp_path)
    assert "params - ws" not in said and ("params ranks better than ws" in said or "no detectable difference between params and ws" in said)
    assert main(args + ["--summary", "../escape"]) == 2 and "--summary '../escape'; accepted" in capsys.readouterr().err


def test_tables_mark_single_seed_rows_as_without_interval():
    from harness.reports.collect import COLUMNS
    from harness.reports.tables import aggregate, display

    def row(strategy, seed):
        r = dict.fromkeys(COLUMNS)
        r.update(run=f"{strategy}-seed{seed}", state="complete", strategy=strategy, space="nb201", preset="mini", seed=seed, overrides="",
                 config_digest="abc", kendall_tau=0.3 + seed / 10, total_steps=10)
        return r

    shown = display(aggregate(pd.DataFrame([row("ws", 0), row("ws", 1), row("dinas", 0)], columns=COLUMNS))).set_index("strategy")
    assert shown.loc["dinas", "n"] == "1 (0) n=1, no interval" and shown.loc["ws", "n"] == "2 (0,1)"


def test_estimator_takes_that_estimators_metrics_and_predictions_column(tmp_path):
    """--estimator: the tau and the within-seed bootstrap come from the named estimator of an all-estimators run."""
    results = []
    for label, scale in (("a", 2.0), ("b", 6.0)):
        for seed in range(2):
            run = _run(tmp_path, label, seed, _noisy(seed, 1.0))  # its own score: nearly the truth
            other = _noisy(seed + 30, scale)
            frame = pd.read_csv(run.run_dir / "predictions.csv")
            frame["score_final-loss"] = other
            frame.to_csv(run.run_dir / "predictions.csv", index=False)
            record = json.loads((run.run_dir / "metrics.json").read_text())
            record["estimators"] = {"estimators": {"final-loss": {"kendall_tau": stats.kendall(other, TRUTH)}}}
            (run.run_dir / "metrics.json").write_text(json.dumps(record))
            results.append(run)
    rows = cmp.read_results(results, estimator="final-loss")
    assert rows.loc[0, "kendall_tau"] == pytest.approx(stats.kendall(_noisy(30, 2.0), TRUTH))
    assert set(rows["estimator"]) == {"final-loss"}
    seeds = cmp.per_seed(rows, VARIANTS[:2], "a", resamples=50)
    expected = stats.arch_bootstrap_tau_difference(_noisy(30, 6.0), _noisy(30, 2.0), TRUTH, 50, 0)
    assert seeds.loc[0, "diff"] == pytest.approx(expected[0])
    with pytest.raises(HarnessError, match="no such estimator.*final-loss"):
        cmp.read_results(results, estimator="ema-loss")
