import json
import math

import pandas as pd
import pytest
import torch

from harness import cli
from harness.errors import DivergenceError, HarnessError
from harness.fileio import read_json
from harness.run import BenchRequest, bench
from harness.strategies.ws import WeightSharing


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
    assert -1 <= metrics["metrics"]["kendall_tau"] <= 1
    assert metrics["ground_truth_column"] == "cifar10_test" and metrics["bn_mode"] == "batch"
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
    with pytest.raises(DivergenceError, match="loss=nan at step 7/8; the last good checkpoint \\(step 4\\) is kept -- lower train.lr, or clip harder"):
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
        (["--strategy", "ws", "--space", "nb999"], "unknown space 'nb999'; accepted: nb201"),
        (["--strategy", "ws", "--preset", "huge"], "unknown preset 'huge'; accepted: "),
        (["--strategy", "ws", "--set", "train.epochz=3"], "unknown key in [train] 'epochz'"),
        (["--strategy", "ws", "--set", "train.lr=-1"], "train.lr=-1 must be > 0"),
        (["--strategy", "ws", "--set", "shape.bn_mode=frozen"], "unknown bn_mode 'frozen'"),
        (["--strategy", "ws", "--set", "eval.ground_truth=cifar10_valid"], "unknown eval.ground_truth 'cifar10_valid'"),
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
    bench(smoke(tmp_path))
    path = tmp_path / "ws-nb201-smoke-seed0" / "config.json"
    record = read_json(path)
    del record["identity"]["config"]["eval"]["estimate_by"]  # as written by a harness without that setting
    path.write_text(json.dumps(record))
    assert bench(smoke(tmp_path, resume=True))["metrics"]["kendall_tau"] is not None
    legacy = {k: v for k, v in record.items() if k not in ("identity", "identity_digest")}  # before identities
    path.write_text(json.dumps(legacy))
    assert bench(smoke(tmp_path, resume=True))["metrics"]["kendall_tau"] is not None
    record["identity"]["config"]["eval"]["bootstrap"] += 1  # a real difference is still refused
    path.write_text(json.dumps(record))
    with pytest.raises(HarnessError, match="differs"):
        bench(smoke(tmp_path, resume=True))
