"""Proxy-scale truth: `truth build` (resumable, kill -9 safe) and the error decomposition every run records."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness import cli
from harness.errors import HarnessError
from harness.runs.fileio import read_json
from harness.runs.run import BenchRequest, bench
from harness.scoring import proxytruth
from harness.truth.build import TruthRequest, build, plan

from conftest import REPO


def request(out, **kw):
    return TruthRequest(**{"preset": "smoke", "archs": 6, "seeds": (0,), "out_dir": out, "executor": "local",
                           "progress": False, "command": "test", **kw})


@pytest.fixture(scope="module")
def built(tmp_path_factory, data_dir):
    os.environ["HARNESS_DATA"] = str(data_dir)
    out = tmp_path_factory.mktemp("truth")
    summary = build(request(out, seeds=(0, 1)))
    return out, summary


def test_build_writes_the_table_and_its_provenance(built):
    out, summary = built
    assert summary["trained"] == 12 and summary["pairs"] == 12
    table = pd.read_csv(out / "nb201-smoke.csv")
    assert list(table.columns) == ["arch", "index", "acc_seed0", "loss_seed0", "acc_seed1", "loss_seed1", "acc_mean", "loss_mean", "seeds"]
    assert len(table) == 6 and (table["seeds"] == 2).all()
    np.testing.assert_allclose(table["acc_mean"], (table["acc_seed0"] + table["acc_seed1"]) / 2, atol=1e-5)
    assert table["acc_seed0"].between(0, 100).all() and (table["loss_seed0"] > 0).all()
    record = read_json(out / "nb201-smoke.json")
    assert record["commands"] == ["test"] and record["identity"]["data_files"] and record["packages"]["torch"]
    assert "commit" in record["git"] and record["identity"]["config"]["train"]["epochs"] == 1


def test_the_architectures_come_from_the_scored_half_and_grow_as_a_prefix(built, data_dir):
    from harness.scoring.archsets import scored_archs
    from harness.scoring.groundtruth import load_ground_truth
    from harness.config import resolve
    from harness.registry import SPACES

    out, _ = built
    small, large = plan(request(out, archs=3)), plan(request(out, archs=10))
    assert [str(a) for a in large.archs[:3]] == [str(a) for a in small.archs]
    cfg = resolve("smoke", space="nb201")
    scored = {str(a) for a in scored_archs(SPACES.get("nb201")(), load_ground_truth(root=data_dir), cfg.eval.num_archs,
                                           cfg.eval.arch_seed, cfg.eval.split_seed)}
    assert {str(a) for a in large.archs} <= scored


def test_a_second_build_does_no_work(built, capsys, monkeypatch):
    out, _ = built
    before = (out / "nb201-smoke.csv").read_text()
    import harness.truth.build as module

    monkeypatch.setattr(module, "train_pairs", lambda *a, **k: pytest.fail("trained again"))
    assert cli.main(["truth", "build", "--preset", "smoke", "--archs", "6", "--seeds", "0,1", "--executor", "local",
                     "--out-dir", str(out), "--no-progress"]) == 0
    assert "trained 0 of 12" in capsys.readouterr().out
    assert (out / "nb201-smoke.csv").read_text() == before


@pytest.mark.parametrize("kw, message", [
    ({"seeds": (0, 0)}, "repeats a seed"),
    ({"archs": 1}, "--archs 1"),
    ({"archs": 21}, "--archs 21"),
    ({"epochs": 0}, "--epochs 0"),
    ({"executor": "slurm"}, "--executor 'slurm'"),
    ({"chunk": 0}, "--chunk 0"),
    ({"overrides": ("train.bogus=1",)}, "bogus"),
])
def test_bad_requests_fail_in_one_line_before_any_work(tmp_path, env_data, kw, message):
    with pytest.raises(HarnessError, match=message):
        build(request(tmp_path / "out", **kw))
    assert not (tmp_path / "out").exists()


def test_a_table_of_other_settings_is_refused(built, tmp_path, env_data):
    out, _ = built
    (tmp_path / "nb201-smoke.json").write_text(json.dumps({"identity": {"digest": "0000"}}))
    with pytest.raises(HarnessError, match="built with other settings"):
        build(request(tmp_path))


def test_ray_build_gives_the_local_table(built, tmp_path, data_dir):
    pytest.importorskip("ray")
    out, _ = built
    build(request(tmp_path, executor="ray", chunk=4))
    local = pd.read_csv(out / "nb201-smoke.csv")[["arch", "acc_seed0", "loss_seed0"]]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "nb201-smoke.csv")[["arch", "acc_seed0", "loss_seed0"]], local)


def test_kill_9_mid_build_then_rerun_gives_the_same_table(built, tmp_path, data_dir):
    out, _ = built
    cmd = [sys.executable, "-m", "harness", "truth", "build", "--preset", "smoke", "--archs", "6", "--seeds", "0",
           "--executor", "local", "--chunk", "1", "--out-dir", str(tmp_path), "--no-progress"]
    env = {**os.environ, "HARNESS_DATA": str(data_dir), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    work = tmp_path / ".work"
    deadline = time.time() + 240
    while time.time() < deadline and len(list(work.glob("*/*-seed0.json"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(work.glob("*/*-seed0.json")))
    assert 1 <= done < 6, f"killed after {done} of 6"  # really mid-way
    assert not (tmp_path / "nb201-smoke.csv").exists()
    rerun = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"trained {6 - done} of 6" in rerun.stdout
    columns = ["arch", "index", "acc_seed0", "loss_seed0"]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "nb201-smoke.csv")[columns], pd.read_csv(out / "nb201-smoke.csv")[columns])


# ---- the decomposition ---------------------------------------------------------------------------------------
def test_decomposition_separates_the_two_errors():
    rng = np.random.default_rng(0)
    benchmark = rng.normal(size=200)
    proxy = benchmark + rng.normal(scale=1.0, size=200)  # a proxy task with its own error
    estimate = proxy.copy()  # no weight-sharing error at all
    d = proxytruth.decomposition(estimate, benchmark, proxy, resamples=200, seed=1)
    assert d["estimate_vs_proxy"]["kendall_tau"] == pytest.approx(1.0)
    assert d["estimate_vs_benchmark"]["kendall_tau"] == pytest.approx(d["proxy_vs_benchmark"]["kendall_tau"])
    lo, hi = d["proxy_vs_benchmark"]["kendall_tau_ci95"]
    assert lo < d["proxy_vs_benchmark"]["kendall_tau"] < hi and hi - lo < 0.25
    assert d["num_archs"] == 200 and "sparse_kendall_tau" in d["estimate_vs_proxy"]


def test_seed_agreement_uses_architectures_with_both_seeds():
    table = pd.DataFrame({"acc_seed0": [1.0, 2.0, 3.0, 4.0], "acc_seed1": [1.0, 3.0, 2.0, math.nan]})
    out = proxytruth.seed_agreement(table)
    assert out["seed_tau_archs"] == 3 and out["seed_tau"] == pytest.approx(stats.kendalltau([1, 2, 3], [1, 3, 2]).statistic)


def test_every_run_of_the_preset_scores_the_truth(built, tmp_path, monkeypatch, env_data):
    out, _ = built
    monkeypatch.setenv("HARNESS_TRUTH_DIR", str(out))
    metrics = bench(BenchRequest(strategy="params", preset="smoke", runs_dir=tmp_path, progress=False))
    d = metrics["truth_decomposition"]
    assert d["proxy_truth"] == "nb201-smoke" and d["num_archs"] == 6 and d["seed_tau_archs"] == 6
    rows = pd.read_csv(tmp_path / "params-nb201-smoke-seed0" / "truth_predictions.csv")
    table = pd.read_csv(out / "nb201-smoke.csv")
    assert list(rows["arch"]) == list(table["arch"])
    np.testing.assert_allclose(rows["proxy_truth"], table["acc_mean"], atol=1e-6)
    for key, (x, y) in {"estimate_vs_benchmark": ("estimate", "ground_truth"), "estimate_vs_proxy": ("estimate", "proxy_truth"),
                        "proxy_vs_benchmark": ("proxy_truth", "ground_truth")}.items():
        assert d[key]["kendall_tau"] == pytest.approx(stats.kendalltau(rows[x], rows[y]).statistic)
    other = bench(BenchRequest(strategy="params", preset="smoke", runs_dir=tmp_path, progress=False, overrides=("train.epochs=2",)))
    assert "truth_decomposition" not in other and "train.epochs" in other["truth_decomposition_note"]


def test_truth_architectures_outside_the_scored_set_are_estimated_too(built, tmp_path, monkeypatch, env_data):
    out, _ = built
    table = pd.read_csv(out / "nb201-smoke.csv")
    from harness.scoring.groundtruth import load_ground_truth

    gt = load_ground_truth(root=env_data)
    outsider = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    table.loc[len(table)] = {**{c: 50.0 for c in table.columns if c.startswith(("acc", "loss"))}, "arch": outsider,
                             "index": gt.index_of(gt.arch_of(0).parse(outsider)), "seeds": 2}
    truth_dir = tmp_path / "truth"
    truth_dir.mkdir()
    table.to_csv(truth_dir / "nb201-smoke.csv", index=False)
    (truth_dir / "nb201-smoke.json").write_text((out / "nb201-smoke.json").read_text())
    monkeypatch.setenv("HARNESS_TRUTH_DIR", str(truth_dir))
    metrics = bench(BenchRequest(strategy="params", preset="smoke", runs_dir=tmp_path, progress=False))
    assert metrics["truth_decomposition"]["num_archs"] == 7 and metrics["metrics"]["num_archs"] == 20
    rows = pd.read_csv(tmp_path / "params-nb201-smoke-seed0" / "truth_predictions.csv")
    assert outsider in set(rows["arch"]) and outsider not in set(pd.read_csv(tmp_path / "params-nb201-smoke-seed0" / "predictions.csv")["arch"])
