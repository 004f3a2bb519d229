import json
import math
import shutil
from pathlib import Path

import numpy as np

import pandas as pd
import pytest
import torch

from harness import cli
from harness.errors import DivergenceError, HarnessError
from harness.runs.fileio import read_json
from harness.runs.run import BenchRequest, bench
from harness.strategies.ws import WeightSharing

REPO = Path(__file__).resolve().parents[1]


def smoke(tmp_path, **kw):
    return BenchRequest(**{"strategy": "ws", "preset": "smoke", "runs_dir": tmp_path, "progress": False, **kw})


def test_smoke_run_writes_a_complete_run_directory(tmp_path, env_data):
    metrics = bench(smoke(tmp_path))
    run = tmp_path / "ws-nb201-smoke-seed0"
    for name in ("config.json", "status.json", "checkpoint.pt", "predictions.csv", "metrics.json", "env.json", "run.log"):
        assert (run / name).is_file(), name
    assert read_json(run / "status.json")["state"] == "complete"
    predictions = pd.read_csv(run / "predictions.csv")
    assert list(predictions.columns[:3]) == ["index", "arch", "estimate"]
    assert (predictions["ground_truth_column"] == "cifar10_test").all()
    assert metrics["metrics"]["num_archs"] == len(predictions) == 20
    tau = metrics["metrics"]["kendall_tau"]  # the run's tau is Kendall's of its own predictions (NaN fails)
    assert math.isfinite(tau) and tau == pytest.approx(predictions["estimate"].corr(predictions["ground_truth"], method="kendall"))
    assert metrics["ground_truth_column"] == "cifar10_test" and metrics["bn_mode"] == "batch"
    # The scored/probe split is recorded in the config and the result.
    assert read_json(run / "config.json")["config"]["eval"]["split_seed"] == 0
    assert metrics["arch_split"]["seed"] == 0 and metrics["arch_split"]["rule"] == "nb201 strict isomorphism"
    assert metrics["arch_split"]["scored_half_classes"] + metrics["arch_split"]["probe_half_classes"] == 4930
    env = read_json(run / "env.json")
    assert any(path.endswith("nb201_accuracy.csv") for path in env["data_files"])
    assert env["packages"]["torch"].startswith("2.13.0")


def test_same_seed_gives_identical_predictions(tmp_path, env_data):
    bench(smoke(tmp_path, name="a"))
    bench(smoke(tmp_path, name="b"))
    a = (tmp_path / "a" / "predictions.csv").read_bytes()
    assert a == (tmp_path / "b" / "predictions.csv").read_bytes()
    bench(smoke(tmp_path, name="c", seed=1))
    assert a != (tmp_path / "c" / "predictions.csv").read_bytes()


def test_existing_run_is_never_overwritten(tmp_path, env_data):
    bench(smoke(tmp_path))
    before = (tmp_path / "ws-nb201-smoke-seed0" / "predictions.csv").read_bytes()
    with pytest.raises(HarnessError, match="already exists .*--resume"):
        bench(smoke(tmp_path))
    assert bench(smoke(tmp_path, resume=True))["metrics"]["num_archs"] == 20
    assert (tmp_path / "ws-nb201-smoke-seed0" / "predictions.csv").read_bytes() == before


def test_interrupted_run_resumes_to_the_same_result(tmp_path, env_data, monkeypatch):
    bench(smoke(tmp_path, name="straight", overrides=("train.epochs=2",)))
    original = WeightSharing.train_step

    def dies_at_step_11(self, step, images, labels, arch=None):
        if step == 11:
            raise KeyboardInterrupt
        return original(self, step, images, labels, arch)

    monkeypatch.setattr(WeightSharing, "train_step", dies_at_step_11)
    with pytest.raises(KeyboardInterrupt):
        bench(smoke(tmp_path, name="resumed", overrides=("train.epochs=2",)))
    status = read_json(tmp_path / "resumed" / "status.json")
    assert status["state"] == "interrupted" and status["phase"] == "training"
    assert "interrupted by SIGINT during training" in (tmp_path / "resumed" / "run.log").read_text()
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    assert torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)["step"] == 8
    monkeypatch.setattr(WeightSharing, "train_step", original)
    bench(smoke(tmp_path, name="resumed", overrides=("train.epochs=2",), resume=True))
    straight = pd.read_csv(tmp_path / "straight" / "predictions.csv")
    resumed = pd.read_csv(tmp_path / "resumed" / "predictions.csv")
    pd.testing.assert_frame_equal(straight, resumed)


def test_resume_refuses_a_changed_config(tmp_path, env_data):
    bench(smoke(tmp_path, name="r"))
    with pytest.raises(HarnessError, match=r"differs from the run in train.lr \(run 0.05, this command 0.01\)"):
        bench(smoke(tmp_path, name="r", resume=True, overrides=("train.lr=0.01",)))


def test_non_finite_loss_stops_and_keeps_the_checkpoint(tmp_path, env_data, monkeypatch):
    original = WeightSharing.train_step

    def nan_at_step_6(self, step, images, labels, arch=None):
        loss = original(self, step, images, labels, arch)
        return math.nan if step == 6 else loss

    monkeypatch.setattr(WeightSharing, "train_step", nan_at_step_6)
    with pytest.raises(DivergenceError, match=r"loss=nan at step 7 \(steps 5..8 were checked together\); the last good checkpoint \(step 4\) is kept -- lower train.lr, or clip harder"):
        bench(smoke(tmp_path))
    run = tmp_path / "ws-nb201-smoke-seed0"
    assert torch.load(run / "checkpoint.pt", weights_only=False)["step"] == 4
    assert read_json(run / "status.json")["state"] == "failed"
    assert not (run / "predictions.csv").exists()


def _cli_error(capsys, args):
    code = cli.main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--strategy", "nope"], "unknown strategy 'nope'; accepted: "),
        (["--strategy", "ws", "--space", "nb999"], "unknown space 'nb999'; accepted: nb101, nb201"),
        (["--strategy", "ws", "--preset", "huge"], "unknown preset 'huge'; accepted: "),
        (["--strategy", "ws", "--set", "train.epochz=3"], "unknown key in [train] 'epochz'"),
        (["--strategy", "ws", "--set", "train.lr=-1"], "train.lr=-1 must be > 0"),
        (["--strategy", "ws", "--set", "shape.bn_mode=frozen"], "unknown bn_mode 'frozen'"),
        (["--strategy", "ws", "--set", "eval.ground_truth=cifar10_valid"], "unknown eval.ground_truth 'cifar10_valid'"),
        (["--strategy", "ws", "--set", "eval.num_archs=3000"], "eval.num_archs=3000 exceeds the scored half (2465 function classes"),
        (["--strategy", "ws", "--set", "eval.split_seed=-1"], "eval.split_seed=-1 must be >= 0"),
    ],
)
def test_bad_input_is_one_line(capsys, tmp_path, env_data, args, fragment):
    err = _cli_error(capsys, ["bench", "--preset", "smoke", "--runs-dir", str(tmp_path), "--no-progress", *args][: None] if "--preset" not in args else ["bench", "--runs-dir", str(tmp_path), "--no-progress", *args])
    assert fragment in err
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_missing_data_directory_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "no-data"))
    err = _cli_error(capsys, ["bench", "--strategy", "ws", "--preset", "smoke", "--runs-dir", str(tmp_path / "runs")])
    assert "ground-truth file not found" in err and "convert-gt" in err
    assert not (tmp_path / "runs").exists()


def test_missing_images_are_one_line(capsys, tmp_path, monkeypatch, data_dir):
    (tmp_path / "nb201").mkdir()
    (tmp_path / "nb201" / "nb201_accuracy.csv").symlink_to(data_dir / "nb201" / "nb201_accuracy.csv")
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path))
    err = _cli_error(capsys, ["bench", "--strategy", "ws", "--preset", "smoke", "--runs-dir", str(tmp_path / "runs")])
    assert "cifar10 data not found" in err and "python -m harness download cifar10" in err


def test_every_verb_has_help(capsys):
    parser = cli.build_parser()
    verbs = parser._subparsers._group_actions[0].choices
    assert {"bench", "list", "download", "convert-gt"} <= set(verbs)
    for verb in verbs:
        with pytest.raises(SystemExit) as done:
            cli.main([verb, "--help"])
        assert done.value.code == 0
        assert "usage:" in capsys.readouterr().out


def test_config_json_records_only_the_running_strategy(tmp_path, env_data):
    bench(smoke(tmp_path))
    record = json.loads((tmp_path / "ws-nb201-smoke-seed0" / "config.json").read_text())
    assert record["config"]["strategy"] == {"ws": {}}
    assert record["config"]["shape"]["bn_mode"] == "batch"


def test_estimate_by_loss_scores_minus_the_holdout_loss(tmp_path, env_data):
    bench(smoke(tmp_path, name="acc"))
    bench(smoke(tmp_path, name="loss", overrides=("eval.estimate_by=loss",)))
    by_acc = pd.read_csv(tmp_path / "acc" / "predictions.csv")
    by_loss = pd.read_csv(tmp_path / "loss" / "predictions.csv")
    # Same training (the option only changes the score), different score column.
    assert (by_acc["holdout_loss"] == by_loss["holdout_loss"]).all()
    assert (by_acc["estimate"] == by_acc["holdout_acc"]).all()
    assert (by_loss["estimate"] == -by_loss["holdout_loss"]).all()


def test_a_run_recorded_before_a_new_setting_existed_still_resumes(tmp_path, env_data):
    first = bench(smoke(tmp_path))["metrics"]["kendall_tau"]
    path = tmp_path / "ws-nb201-smoke-seed0" / "config.json"
    record = read_json(path)
    del record["identity"]["config"]["eval"]["estimate_by"]  # as written by a harness without that setting
    path.write_text(json.dumps(record))
    resumed = bench(smoke(tmp_path, resume=True))["metrics"]["kendall_tau"]
    assert math.isfinite(first) and resumed == first
    legacy = {k: v for k, v in record.items() if k not in ("identity", "identity_digest")}  # before identities
    path.write_text(json.dumps(legacy))
    assert bench(smoke(tmp_path, resume=True))["metrics"]["kendall_tau"] == first
    record["identity"]["config"]["eval"]["bootstrap"] += 1  # a real difference is still refused
    path.write_text(json.dumps(record))
    with pytest.raises(HarnessError, match="differs"):
        bench(smoke(tmp_path, resume=True))


# ---- run identity, lock, chunked estimation, how runs end (issue 12) ----

import errno
import os
import pickle
import signal

import harness.runs.run as run_module
from harness.runs.lock import RunLock


def test_resume_with_another_seed_is_refused_finished_or_not(tmp_path, env_data, capsys):
    bench(smoke(tmp_path, name="x"))
    with pytest.raises(HarnessError, match=r"differs from the run in seed \(run 0, this command 1\)"):
        bench(smoke(tmp_path, name="x", seed=1, resume=True))
    # A finished run asked again with another identity is refused, not reprinted.
    err = _cli_error(capsys, ["bench", "--strategy", "ws", "--preset", "smoke", "--runs-dir", str(tmp_path), "--name", "x",
                              "--seed", "7", "--resume", "--no-progress"])
    assert "seed (run 0, this command 7)" in err
    assert read_json(tmp_path / "x" / "metrics.json")["seed"] == 0


def test_resume_with_another_thread_count_or_device_is_refused(tmp_path, env_data):
    bench(smoke(tmp_path, name="t"))
    record = read_json(tmp_path / "t" / "config.json")
    assert record["identity"]["config"]["compute"]["threads"] == 1 and record["identity"]["device_kind"] == "cpu"
    with pytest.raises(HarnessError, match=r"compute.threads \(run 1, this command 2\)"):
        bench(smoke(tmp_path, name="t", resume=True, overrides=("compute.threads=2",)))
    record["identity"]["device_kind"] = "cuda:NVIDIA H100 80GB HBM3"
    (tmp_path / "t" / "config.json").write_text(json.dumps(record))
    with pytest.raises(HarnessError, match=r"device kind \(run 'cuda:NVIDIA H100 80GB HBM3', this command 'cpu'\)"):
        bench(smoke(tmp_path, name="t", resume=True))


def test_resume_with_other_data_files_is_refused(tmp_path, data_dir, monkeypatch):
    root = tmp_path / "data"
    (root / "nb201").mkdir(parents=True)
    (root / "nb201" / "nb201_accuracy.csv").symlink_to(data_dir / "nb201" / "nb201_accuracy.csv")
    shutil.copytree(data_dir / "cifar10", root / "cifar10")
    monkeypatch.setenv("HARNESS_DATA", str(root))
    bench(smoke(tmp_path, name="d"))
    batch = root / "cifar10" / "cifar-10-batches-py" / "data_batch_5"
    with open(batch, "rb") as handle:
        raw = pickle.load(handle, encoding="bytes")
    raw[b"data"][0, 0] ^= 1  # one pixel: the same shape, other numbers
    batch.chmod(0o644)
    with open(batch, "wb") as handle:
        pickle.dump(raw, handle, protocol=2)
    with pytest.raises(HarnessError, match=r"data file cifar10/cifar-10-batches-py/data_batch_5 \(content changed\)"):
        bench(smoke(tmp_path, name="d", resume=True))


def test_a_second_process_on_the_same_run_directory_is_refused(tmp_path, env_data):
    bench(smoke(tmp_path, name="l", overrides=("train.steps=2",)))
    (tmp_path / "l" / "metrics.json").unlink()
    with RunLock(tmp_path / "l"):  # another open file description: flock conflicts as between processes
        with pytest.raises(HarnessError, match=rf"run directory {tmp_path / 'l'} is in use by pid {os.getpid()} on host .* since "):
            bench(smoke(tmp_path, name="l", overrides=("train.steps=2",), resume=True))
    bench(smoke(tmp_path, name="l", overrides=("train.steps=2",), resume=True))  # released: resumes


def test_another_process_gets_a_one_line_error_naming_the_holder(tmp_path, env_data):
    import subprocess
    import sys

    bench(smoke(tmp_path, name="p", overrides=("train.steps=2",)))
    (tmp_path / "p" / "status.json").write_text('{"state": "interrupted"}')
    (tmp_path / "p" / "metrics.json").unlink()
    cmd = [sys.executable, "-m", "harness", "bench", "--strategy", "ws", "--preset", "smoke", "--runs-dir", str(tmp_path),
           "--name", "p", "--no-progress", "--set", "train.steps=2", "--resume"]
    with RunLock(tmp_path / "p"):
        second = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
    assert f"is in use by pid {os.getpid()} on host " in second.stderr
    assert read_json(tmp_path / "p" / "status.json")["state"] == "interrupted"  # the loser wrote nothing


def test_chunked_estimation_matches_one_chunk(tmp_path, env_data):
    bench(smoke(tmp_path, name="one"))
    bench(smoke(tmp_path, name="chunks", overrides=("eval.chunk_archs=8",)))
    a = pd.read_csv(tmp_path / "one" / "predictions.csv")
    b = pd.read_csv(tmp_path / "chunks" / "predictions.csv")
    pd.testing.assert_frame_equal(a, b)
    assert "estimated 8/20" in (tmp_path / "chunks" / "run.log").read_text()


@pytest.mark.parametrize("how", ["sigint", "sigterm"])
def test_run_killed_during_estimation_resumes_after_the_last_chunk(tmp_path, env_data, monkeypatch, how):
    opts = ("eval.chunk_archs=8",)
    bench(smoke(tmp_path, name="straight", overrides=opts))
    original = WeightSharing.estimate
    calls = []

    def dies_on_second_chunk(self, archs):
        calls.append(len(archs))
        if len(calls) == 2:
            if how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
            raise KeyboardInterrupt
        return original(self, archs)

    monkeypatch.setattr(WeightSharing, "estimate", dies_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        bench(smoke(tmp_path, name="killed", overrides=opts))
    status = read_json(tmp_path / "killed" / "status.json")
    assert status["state"] == "interrupted" and status["phase"] == "estimation"
    assert f"interrupted by {how.upper()} during estimation" in (tmp_path / "killed" / "run.log").read_text()
    assert len(np.load(tmp_path / "killed" / "estimates.npz")["archs"]) == 8

    calls.clear()
    monkeypatch.setattr(WeightSharing, "estimate", lambda self, archs: calls.append(len(archs)) or original(self, archs))
    bench(smoke(tmp_path, name="killed", overrides=opts, resume=True))
    assert calls == [8, 4]  # only what was not scored yet
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "straight" / "predictions.csv"),
                                  pd.read_csv(tmp_path / "killed" / "predictions.csv"))


def test_sigterm_during_training_is_recorded(tmp_path, env_data, monkeypatch):
    original = WeightSharing.train_step

    def term_at_step_5(self, step, images, labels, arch=None):
        if step == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, step, images, labels, arch)

    monkeypatch.setattr(WeightSharing, "train_step", term_at_step_5)
    with pytest.raises(HarnessError, match="interrupted by SIGTERM after step 6/8"):
        bench(smoke(tmp_path))
    run = tmp_path / "ws-nb201-smoke-seed0"
    status = read_json(run / "status.json")
    assert status["state"] == "interrupted" and status["step"] == 6
    assert "interrupted by SIGTERM" in (run / "run.log").read_text()


def test_disk_full_during_estimation_is_recorded_and_one_line(tmp_path, env_data, monkeypatch, capsys):
    real = run_module.atomic_write

    def full(path, write):
        if path.name == "estimates.npz":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, write)

    monkeypatch.setattr(run_module, "atomic_write", full)
    err = _cli_error(capsys, ["bench", "--strategy", "ws", "--preset", "smoke", "--runs-dir", str(tmp_path), "--no-progress"])
    assert "interrupted during estimation: the disk holding" in err and "No space left on device" in err and "--resume" in err
    assert "with the estimates made so far" in err
    run = tmp_path / "ws-nb201-smoke-seed0"
    status = read_json(run / "status.json")
    assert status["state"] == "interrupted" and "No space left" in status["error"]
    assert "No space left on device" in (run / "run.log").read_text()


def test_same_command_twice_gives_identical_predictions_whatever_the_callers_threads(tmp_path, env_data, capsys):
    # `make bench` pins threads through the preset; the caller's torch thread count must not leak in.
    outputs = []
    for threads, where in ((2, "a"), (1, "b")):
        torch.set_num_threads(threads)
        assert cli.main(["bench", "--strategy", "ws", "--preset", "smoke", "--runs-dir", str(tmp_path / where), "--no-progress"]) == 0
        run = tmp_path / where / "ws-nb201-smoke-seed0"
        assert read_json(run / "metrics.json")["threads"] == 1
        outputs.append((run / "predictions.csv").read_bytes())
    assert outputs[0] == outputs[1]
    a, b = (read_json(tmp_path / w / "ws-nb201-smoke-seed0" / "config.json")["identity"]["digest"] for w in "ab")
    assert a == b


def test_reruns_of_one_identity_are_duplicates_not_extra_seeds(tmp_path, capsys):
    from harness.reports.collect import collect
    from harness.reports.search_table import collect as collect_search, render
    from harness.reports.tables import aggregate
    from tests.test_tables import write_run

    root = tmp_path / "runs"
    first = write_run(root, "ws", 0, 0.40)
    write_run(root, "ws", 1, 0.50)
    rerun = root / (first.name + "-again")
    shutil.copytree(first, rerun)  # the same seed and config run twice (e.g. with --name)
    metrics = read_json(rerun / "metrics.json")
    metrics["metrics"]["kendall_tau"] = 0.10
    (rerun / "metrics.json").write_text(json.dumps(metrics))
    runs = collect(root)
    assert runs.set_index("run").loc[rerun.name, "duplicate_of"] == first.name
    row = aggregate(runs).set_index("strategy").loc["ws"]
    assert row["n"] == 2 and row["seeds"] == "0,1" and row["kendall_tau_mean"] == pytest.approx(0.45)
    assert cli.main(["tables", "--runs-dir", str(root), "--out", str(tmp_path / "out"), "--no-figures"]) == 0
    markdown = (tmp_path / "out" / "runs.md").read_text()
    assert "Re-runs of a run above" in markdown and rerun.name in markdown

    # search-table: the same rule for differentiable-search runs.
    history = [{"arch": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
                "cifar10_test": 93.0, "cifar100_test": 70.0, "imagenet16_120_test": 44.0,
                "skip_fraction": 0.1, "none_fraction": 0.0}]
    search = tmp_path / "search"
    a = write_run(search, "darts", 0, 0.2, metrics={"strategy_summary": {"history": history}})
    shutil.copytree(a, search / (a.name + "-again"))
    frame = collect_search([search])
    assert frame["duplicate_of"].notna().sum() == 1
    text = render(frame)
    assert f"{a.name}-again = {a.name}" in text
    ours = next(line for line in text.splitlines() if line.startswith("| darts (this harness)"))
    assert "| 0 |" in ours  # one seed, not "0,0"


def test_a_run_killed_without_warning_is_told_from_a_running_one(tmp_path, env_data):
    from harness.reports.collect import read_run

    bench(smoke(tmp_path, name="k", overrides=("train.steps=2",)))
    run = tmp_path / "k"
    (run / "status.json").write_text('{"state": "running", "step": 1}')  # as SIGKILL leaves it
    (run / "metrics.json").unlink()
    assert read_run(run)["state"] == "killed"
    with RunLock(run):
        assert read_run(run)["state"] == "running"
