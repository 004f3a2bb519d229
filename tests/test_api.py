"""The Python API: typed results, the same runs as the CLI verbs (which call it), and a light `import harness`."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import harness
from harness.api import settings
from harness.cli import main
from harness.errors import HarnessError

ROOT = Path(__file__).resolve().parents[1]


def test_import_harness_stays_light():
    code = "import sys, harness; print(sorted(m for m in ('torch', 'pandas', 'numpy', 'ray') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True).stdout
    assert out.strip() == "[]"
    assert callable(harness.bench) and callable(harness.compare) and callable(harness.sweep)
    with pytest.raises(AttributeError):
        harness.not_an_api_name  # noqa: B018


def test_overrides_as_a_dict_become_set_texts():
    assert settings({"train.epochs": 2, "shape.bn_mode": "running", "eval.flip": False, "train.lr": 0.05}) == (
        "train.epochs=2", "shape.bn_mode=running", "eval.flip=false", "train.lr=0.05")
    assert settings(["train.epochs=2"]) == ("train.epochs=2",)
    with pytest.raises(HarnessError, match="give a dict"):
        settings("train.epochs=2")


def test_bench_returns_metrics_run_dir_and_predictions_and_reuses_a_complete_run(env_data, tmp_path, capsys):
    r = harness.bench(strategy="params", preset="smoke", runs_dir=tmp_path)
    assert isinstance(r, harness.BenchResult)
    assert -1 <= r.metrics["kendall_tau"] <= 1
    assert r.run_dir == tmp_path / "params-nb201-smoke-seed0"
    predictions = r.predictions()
    assert isinstance(predictions, pd.DataFrame) and len(predictions) == r.metrics["num_archs"]
    assert "Kendall tau" in r.summary()
    again = harness.bench(strategy="params", preset="smoke", runs_dir=tmp_path)  # resume=None: the complete run
    assert again.metrics == r.metrics
    with pytest.raises(HarnessError, match="already exists"):
        harness.bench(strategy="params", preset="smoke", runs_dir=tmp_path, resume=False)
    # The CLI verb is the same function: same run, same printed summary.
    assert main(["bench", "--strategy", "params", "--preset", "smoke", "--runs-dir", str(tmp_path / "cli"), "--no-progress"]) == 0
    assert capsys.readouterr().out.splitlines()[:3] == r.summary().splitlines()[:3]


def test_compare_and_sweep_return_dataframes_and_results(env_data, tmp_path):
    runs = tmp_path / "runs"
    for strategy in ("params", "random"):
        for seed in (0, 1):
            harness.bench(strategy=strategy, preset="smoke", seed=seed, runs_dir=runs)
    # Every run is complete, so neither call starts Ray.
    c = harness.compare(strategies=["params", "random"], seeds="0,1", preset="smoke", runs_dir=runs, out=tmp_path / "out",
                        arch_bootstrap=10)
    assert isinstance(c, harness.CompareResult) and c.complete
    assert list(c.verdict["label"]) == ["random"] and list(c.verdict["reference"]) == ["params"]
    assert c.verdict["verdict"].iloc[0].startswith("params ranks better than random") and "paired t p=" in c.verdict["verdict"].iloc[0]
    assert sorted(c.variants["label"]) == ["params", "random"] and len(c.runs) == 4
    assert (tmp_path / "out" / "compare.md").read_text() == c.text
    results = harness.sweep(strategies="params,random", seeds=[0, 1], presets="smoke", runs_dir=runs)
    assert [(s.strategy, s.seed, s.state) for s in results] == [
        ("params", 0, "complete"), ("params", 1, "complete"), ("random", 0, "complete"), ("random", 1, "complete")]
    assert results[0].result().metrics["kendall_tau"] == results[0].kendall_tau
    with pytest.raises(HarnessError, match="--reference 'ws' is not among the variants"):
        harness.compare(strategies="params,random", seeds="0,1", preset="smoke", runs_dir=runs, reference="ws")
