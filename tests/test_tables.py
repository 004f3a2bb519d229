"""Tables, figures and paper tables rendered from run directories written here (complete, partial, failed)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.reports.collect import collect, read_run
from harness.reports.paper import RunSpec, expected_config, load_spec, plan, render, write_paper
from harness.reports.tables import aggregate, display, to_latex, write_tables
from harness.runs.run import BenchRequest, run_name



def write_run(root: Path, strategy: str, seed: int, tau: float | None, preset: str = "mini", state: str = "complete",
              config: dict | None = None, metrics: dict | None = None, overrides: tuple[str, ...] = (),
              with_predictions: bool = True, drop: tuple[str, ...] = ()) -> Path:
    name = run_name(BenchRequest(strategy=strategy, preset=preset, seed=seed, overrides=overrides))
    path = root / name
    path.mkdir(parents=True)
    cfg = config or expected_config(RunSpec(strategy, strategy, preset, (seed,), overrides))
    (path / "config.json").write_text(json.dumps({"strategy": strategy, "space": "nb201", "preset": preset, "seed": seed,
                                                  "overrides": list(overrides), "config": cfg}))
    status = {"state": state}
    if state == "failed":
        status["error"] = "training diverged: loss=nan at step 7"
    if state == "running":
        status["step"] = 40
    (path / "status.json").write_text(json.dumps(status))
    if state == "complete":
        body = {
            "strategy": strategy, "space": "nb201", "preset": preset, "seed": seed, "ground_truth_column": "cifar10_test",
            "bn_mode": "batch", "total_steps": 0 if strategy == "params" else 100, "steps_per_epoch": 10,
            "wall_seconds": 12.0 + seed, "git_commit": "0123456789abcdef",
            "metrics": {"kendall_tau": tau, "spearman_rho": None if tau is None else tau + 0.1, "kendall_tau_top1pct": None,
                        "kendall_tau_top5pct": 0.2, "precision_at_10": 0.5, "precision_at_50": 1.0, "regret": 1.5},
            "strategy_summary": {"derived_truth": {"cifar10_test": 90.0 + seed}},
        }
        body.update(metrics or {})
        for key in drop:
            body.pop(key, None)
        (path / "metrics.json").write_text(json.dumps(body))
        if with_predictions:
            truth = np.linspace(80, 94, 6)
            pd.DataFrame({"index": range(6), "arch": ["a"] * 6, "estimate": truth[::-1] if tau and tau < 0 else truth,
                          "ground_truth": truth, "ground_truth_column": "cifar10_test"}).to_csv(path / "predictions.csv", index=False)
    return path


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    write_run(root, "ws", 0, 0.40)
    write_run(root, "ws", 1, 0.50)
    write_run(root, "ws", 2, 0.60)
    write_run(root, "params", 0, 0.55)
    write_run(root, "dinas", 0, 0.70)
    write_run(root, "ws", 0, 0.30, preset="smoke")  # no params baseline on smoke
    write_run(root, "synflow", 0, 0.45, drop=("wall_seconds", "git_commit", "bn_mode"))  # an older, leaner metrics.json
    write_run(root, "gm", 0, None, state="failed")
    write_run(root, "fewshot", 0, None, state="running")
    (root / "not-a-run").mkdir()
    (root / "ws-nb201-mini-seed9").mkdir()
    (root / "ws-nb201-mini-seed9" / "status.json").write_text("{ truncated")  # corrupt: tolerated
    return root


def test_collect_reads_every_run_directory_whatever_its_state(runs):
    frame = collect(runs)
    assert len(frame) == 10  # not-a-run has none of the run files
    states = dict(zip(frame["run"], frame["state"]))
    assert states["gm-nb201-mini-seed0"] == "failed"
    assert states["fewshot-nb201-mini-seed0"] == "running"
    assert states["ws-nb201-mini-seed9"] == "unknown"
    lean = frame[frame["strategy"] == "synflow"].iloc[0]
    assert lean["state"] == "complete" and math.isnan(lean["wall_seconds"]) and lean["bn_mode"] == "batch"  # from config.json


def test_aggregate_means_std_and_baseline_remark(runs):
    table = aggregate(collect(runs)).set_index(["strategy", "preset"])
    ws = table.loc[("ws", "mini")]
    assert ws["n"] == 3 and ws["seeds"] == "0,1,2"
    assert ws["kendall_tau_mean"] == pytest.approx(0.5)
    assert ws["kendall_tau_std"] == pytest.approx(0.1)  # sample std of 0.4, 0.5, 0.6
    assert ws["remark"] == "tau below the params baseline (0.550)"
    assert table.loc[("dinas", "mini")]["remark"] == ""
    assert table.loc[("ws", "smoke")]["remark"] == "no params baseline run for this preset"
    assert table.loc[("params", "mini")]["training_free"]
    assert ("gm", "mini") not in table.index and ("fewshot", "mini") not in table.index


def test_runs_with_different_configs_are_not_averaged(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "ws", 0, 0.2)
    other = expected_config(RunSpec("ws", "ws", "mini", (1,)))
    other["train"]["epochs"] = 99
    write_run(root, "ws", 1, 0.8, config=other)
    table = aggregate(collect(root))
    assert len(table) == 2 and list(table["n"]) == [1, 1]
    labels = display(table)["preset"].tolist()
    assert all("[cfg " in label for label in labels)  # same name, different config: told apart


def test_written_tables_markdown_csv_latex(runs, tmp_path):
    out = tmp_path / "tables"
    paths = write_tables(collect(runs), out, registered=["ws", "dinas", "params", "synflow", "darts"])
    md = paths["markdown"].read_text()
    assert "| ws " in md and "0.500 ± 0.100" in md and "3 (0,1,2)" in md
    assert "tau below the params baseline (0.550)" in md
    assert "Registered strategies not run: darts." in md
    assert "gm-nb201-mini-seed0" in md and "training diverged" in md and "running or interrupted" in md
    csv = pd.read_csv(paths["csv"])
    assert {"strategy", "preset", "n", "kendall_tau_mean", "kendall_tau_std", "git_commit", "bn_mode", "ground_truth_column"} <= set(csv.columns)
    tex = paths["latex"].read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "$\\pm$" in tex
    assert "cifar10\\_test" in tex
    assert len(pd.read_csv(paths["all_runs"])) == 10


def test_latex_escapes_special_characters():
    tex = to_latex(pd.DataFrame({"a_b": ["50%", "x & y"]}))
    assert "a\\_b" in tex and "50\\%" in tex and "x \\& y" in tex


def test_tables_command_writes_figures(runs, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["tables", "--runs-dir", str(runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "10 run directories read" in printed
    assert (out / "runs.md").is_file() and (out / "figures" / "scatter_estimate_vs_truth.png").is_file()
    assert not (out / "figures" / "disturbance.png").exists()  # nobody measured it


def test_disturbance_and_tau_curves_are_drawn_when_recorded(runs, tmp_path):
    from harness.reports.figures import write_figures

    path = runs / "ws-nb201-mini-seed0"
    pd.DataFrame({"t": [1, 10, 100], "pd_mean": [0.5, 1.0, 2.0], "pd_q25": [0, 0.5, 1], "pd_q75": [1, 2, 3]}).to_csv(path / "disturbance_pd.csv", index=False)
    pd.DataFrame({"step": [10, 20, 30], "tau_previous": [np.nan, 0.5, 0.6], "tau_truth": [0.1, 0.2, 0.3]}).to_csv(path / "rank_disturbance.csv", index=False)
    written = write_figures(collect(runs), tmp_path / "fig")
    names = {p.name for p in written}
    assert {"disturbance.png", "disturbance.pdf", "tau_over_training.png", "scatter_estimate_vs_truth.png"} <= names


def test_empty_runs_dir_gives_empty_tables(tmp_path):
    paths = write_tables(collect(tmp_path / "nothing"), tmp_path / "out", registered=["ws"])
    assert "_no runs_" in paths["markdown"].read_text()


SPEC = """
title = "Test table"
preset = "mini"
seeds = [0, 1]

[[metrics]]
path = "metrics.kendall_tau"
header = "tau"

[[metrics]]
path = "strategy_summary.derived_truth.cifar10_test"
header = "C10"
digits = 2

[[runs]]
strategy = "ws"
label = "WS"

[[runs]]
strategy = "gm"
label = "GM"

[[runs]]
strategy = "params"
seeds = [0]

[[runs]]
strategy = "no-such-strategy"
label = "Ghost"

[[references]]
row = "WS"
metric = "metrics.kendall_tau"
value = 0.61
verified = true
source = "Somebody et al. 2021, Table 2"

[[references]]
row = "gm"
metric = "metrics.kendall_tau"
source = "Hu et al. 2022"
"""


def test_paper_table_renders_ours_beside_published_and_not_run(runs, tmp_path):
    spec_path = tmp_path / "test_table.toml"
    spec_path.write_text(SPEC)
    spec = load_spec(spec_path)
    states = {(r.strategy, seed): state for r, seed, _p, state in plan(spec, runs)}
    assert states[("ws", 0)] == "complete" and states[("gm", 0)] == "partial" and states[("gm", 1)] == "missing"
    assert states[("no-such-strategy", 0)] == "unregistered"
    table, notes = render(spec, runs)
    rows = table.set_index("method")
    assert rows.loc["WS", "tau (ours)"] == "0.450 ± 0.071" and rows.loc["WS", "n"] == "2/2"
    assert rows.loc["WS", "C10 (ours)"] == "90.50 ± 0.71"
    assert rows.loc["WS", "tau (published)"] == "0.61 [1]"
    assert rows.loc["GM", "tau (ours)"] == "not run (failed)" and rows.loc["GM", "tau (published)"] == "unverified [2]"
    assert rows.loc["Ghost", "tau (ours)"] == "not run (strategy not registered)"
    assert rows.loc["params", "tau (ours)"] == "0.550"
    assert "C10 (published)" not in table.columns  # no reference for it
    assert rows.loc["WS", "remark"] == "tau below the params baseline (0.550)" and rows.loc["params", "remark"] == ""
    assert notes[0].startswith("[1] Somebody et al. 2021") and "could not be checked" in notes[1]
    paths = write_paper(spec, runs, tmp_path / "out")
    assert "not run (strategy not registered)" in paths["markdown"].read_text()


def test_paper_treats_a_run_of_another_config_as_stale(tmp_path):
    root = tmp_path / "runs"
    old = expected_config(RunSpec("ws", "ws", "mini", (0,)))
    old["train"]["epochs"] += 1  # made before the preset was re-tuned
    write_run(root, "ws", 0, 0.9, config=old)
    write_run(root, "ws", 1, 0.5)
    spec_path = tmp_path / "t.toml"
    spec_path.write_text(SPEC)
    spec = load_spec(spec_path)
    states = {(r.strategy, seed): state for r, seed, _p, state in plan(spec, root)}
    assert states[("ws", 0)] == "stale" and states[("ws", 1)] == "complete"
    rows = render(spec, root)[0].set_index("method")
    assert rows.loc["WS", "tau (ours)"] == "0.500" and rows.loc["WS", "n"] == "1/2"


def test_paper_spec_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(SPEC.replace('row = "gm"', 'row = "nobody"'))
    with pytest.raises(HarnessError, match="unknown row"):
        load_spec(bad)
    with pytest.raises(HarnessError, match="unknown paper table 'nope'"):
        load_spec("nope")


@pytest.mark.parametrize("name", ["ranking", "nb201_search", "disturbance"])
def test_shipped_paper_specs_load(name):
    spec = load_spec(name)
    assert spec.runs and spec.metrics
    for ref in spec.references:
        assert ref.source
        assert ref.value is not None or not ref.verified


def test_paper_command_without_running(runs, tmp_path, capsys):
    spec_path = tmp_path / "t.toml"
    spec_path.write_text(SPEC)
    assert main(["paper", str(spec_path), "--no-run", "--runs-dir", str(runs), "--out", str(tmp_path / "o")]) == 0
    assert "## Test table" in capsys.readouterr().out


def test_read_run_tolerates_an_empty_directory(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text("[]")
    row = read_run(tmp_path / "r")
    assert row["state"] == "unknown" and row["strategy"] is None


def test_runs_estimating_on_test_images_are_flagged(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "ws", 0, 0.40)  # mini: 2,000 held-out training-split images
    write_run(root, "ws", 1, 0.45, overrides=("data.holdout_images=1000", "data.holdout_test=true", "data.eval_images=2017"),
              config=expected_config(RunSpec("ws", "ws", "mini", (1,), ("data.holdout_images=1000", "data.holdout_test=true",
                                                                         "data.eval_images=2017"))),
              metrics={"data": {"holdout_test_images": 1017}})
    runs = collect(root)
    by_seed = {int(r.seed): r for r in runs.itertuples()}
    assert (by_seed[0].estimation_images, by_seed[0].estimates_on_test) == ("2000 train", False)
    assert (by_seed[1].estimation_images, by_seed[1].estimates_on_test) == ("1000 train + 1017 test", True)
    shown = display(aggregate(runs))
    assert sorted(shown["estimation images"]) == ["1000 train + 1017 test (TEST)", "2000 train"]
    paths = write_tables(runs, tmp_path / "out")
    assert "Rows marked (TEST) estimate on official test images" in paths["markdown"].read_text()
    assert "estimates_on_test" in pd.read_csv(paths["csv"]).columns
