"""Every bad input of issue 12 section 2: one line (`error: ...`, exit 2, no traceback) before any work."""
import os
import pickle
import shutil

import pandas as pd
import pytest

from harness import cli
from harness.data.download import install, md5_file
from harness.runs.fileio import read_json
from tests.helpers import cifar10_archive, write_cifar_batch


def one_line(capsys, args):
    code = cli.main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def bench_args(tmp_path, *extra, strategy="ws"):
    return ["bench", "--strategy", strategy, "--preset", "smoke", "--runs-dir", str(tmp_path / "runs"), "--no-progress", *extra]


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--set", "train=5"], "[train] is a table of settings, got 5"),
        (["--set", "strategy=5"], "[strategy] is a table of tables, got 5"),
        (["--set", "features=5"], "[features] is a table of tables, got 5"),
        (["--set", "strategy.ws=5"], "strategy.ws=5 is not a table of options"),
        (["--set", "train.momentum=-1"], "train.momentum=-1 must be in [0, 1)"),
        (["--set", "train.weight_decay=-1"], "train.weight_decay=-1 must be >= 0"),
        (["--set", "data.train_images=abc"], "data.train_images='abc' has type str; expected int"),
        (["--set", "train.steps=-5"], "train.steps=-5 must be >= 0"),
        (["--set", "eval.bootstrap=0"], "eval.bootstrap=0 must be >= 1"),
        (["--set", "eval.arch_seed=-1"], "eval.arch_seed=-1 must be >= 0"),
        (["--seed", "-1"], "--seed -1 must be an integer >= 0"),
        (["--set", "train.lr_min=0.5"], "train.lr_min=0.5 must be in 0..train.lr (0.05)"),
        (["--set", "train.epochs=true"], "train.epochs=True has type bool; expected int"),
        (["--set", "data.batch_size=false"], "data.batch_size=False has type bool; expected int"),
        (["--set", "train.lr=nan"], "train.lr=nan must be a finite number"),
        (["--set", "train.lr=inf"], "train.lr=inf must be a finite number"),
        (["--set", "strategy.params.x=1"], "sets options of strategy 'params', but this run's strategy is 'ws'"),
        (["--set", "data.dataset=cifar100"], "data.dataset='cifar100' would be scored against ground-truth column eval.ground_truth='cifar10_test'"),
        (["--name", "../escape"], "--name '../escape' must be a plain folder name inside the runs directory"),
        (["--name", "/tmp/abs"], "--name '/tmp/abs' must be a plain folder name"),
    ],
)
def test_bad_settings_are_one_line_before_any_work(capsys, tmp_path, env_data, extra, fragment):
    err = one_line(capsys, bench_args(tmp_path, *extra))
    assert fragment in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "escape").exists()


def test_runs_dir_that_is_a_file_or_unwritable(capsys, tmp_path, env_data, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("x")
    err = one_line(capsys, ["bench", "--strategy", "ws", "--preset", "smoke", "--runs-dir", str(afile)])
    assert f"--runs-dir {afile} is not a directory" in err
    err = one_line(capsys, ["bench", "--strategy", "ws", "--preset", "smoke", "--runs-dir", str(afile / "sub")])
    assert "is not writable" in err
    # Tests run as root, where permissions do not bite: ask os.access the way an ordinary user's would answer.
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(locked) else real_access(p, mode))
    err = one_line(capsys, ["bench", "--strategy", "ws", "--preset", "smoke", "--runs-dir", str(locked)])
    assert f"--runs-dir {locked} is not writable" in err and not any(locked.iterdir())


def _data_with_ground_truth(tmp_path, data_dir, edit=None):
    root = tmp_path / "data"
    (root / "nb201").mkdir(parents=True)
    (root / "cifar10").symlink_to(data_dir / "cifar10")
    table = pd.read_csv(data_dir / "nb201" / "nb201_accuracy.csv")
    if edit:
        table = edit(table)
    table.to_csv(root / "nb201" / "nb201_accuracy.csv", index=False)
    return root


@pytest.mark.parametrize(
    "value, fragment",
    [("n/a", "cifar10_test='n/a' at index 7 is not an accuracy; accepted: numbers in 0..100"),
     ("123.5", "cifar10_test=123.5 at index 7 is not an accuracy"),
     ("-1", "cifar10_test=-1.0 at index 7 is not an accuracy")],
)
def test_ground_truth_with_bad_accuracies(capsys, tmp_path, data_dir, monkeypatch, value, fragment):
    def edit(table):
        table["cifar10_test"] = table["cifar10_test"].astype(object)
        table.loc[7, "cifar10_test"] = value if value == "n/a" else float(value)
        return table

    monkeypatch.setenv("HARNESS_DATA", str(_data_with_ground_truth(tmp_path, data_dir, edit)))
    err = one_line(capsys, bench_args(tmp_path))
    assert fragment in err and not (tmp_path / "runs").exists()


def test_cifar_labels_outside_the_class_range(capsys, tmp_path, data_dir, monkeypatch):
    root = tmp_path / "data"
    (root / "nb201").mkdir(parents=True)
    (root / "nb201" / "nb201_accuracy.csv").symlink_to(data_dir / "nb201" / "nb201_accuracy.csv")
    folder = root / "cifar10" / "cifar-10-batches-py"
    for i in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{i}", 100, seed=i, classes=100 if i == 3 else 10)
    write_cifar_batch(folder / "test_batch", 100, seed=9)
    monkeypatch.setenv("HARNESS_DATA", str(root))
    err = one_line(capsys, bench_args(tmp_path))
    assert "data_batch_3 has label" in err and "accepted for cifar10: 0..9" in err
    assert not (tmp_path / "runs").exists()


def test_cifar100_against_cifar10_ground_truth_needs_an_explicit_choice(capsys, tmp_path, env_data):
    args = bench_args(tmp_path, "--set", "data.dataset=cifar100", "--set", "eval.allow_other_dataset_ground_truth=true",
                      "--set", "train.steps=4")
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "WARNING: trained on cifar100 but scored against the cifar10_test ground truth" in out
    metrics = read_json(next((tmp_path / "runs").iterdir()) / "metrics.json")
    assert metrics["dataset"] == "cifar100" and metrics["ground_truth_column"] == "cifar10_test"
    assert "cifar100" in metrics["ground_truth_warning"]
    assert "trained on cifar100" in (next((tmp_path / "runs").iterdir()) / "run.log").read_text()


def test_corrupt_checkpoint_or_config_on_resume(capsys, tmp_path, env_data):
    assert cli.main(bench_args(tmp_path, "--name", "r", "--set", "train.steps=4")) == 0
    run = tmp_path / "runs" / "r"
    (run / "metrics.json").unlink()
    (run / "status.json").write_text('{"state": "interrupted"}')
    (run / "checkpoint.pt").write_bytes(b"\x00garbage")
    err = one_line(capsys, bench_args(tmp_path, "--name", "r", "--set", "train.steps=4", "--resume"))
    assert "checkpoint is corrupt" in err and "delete it to restart training" in err
    assert read_json(run / "status.json")["state"] == "failed"
    (run / "config.json").write_text("{not json")
    err = one_line(capsys, bench_args(tmp_path, "--name", "r", "--set", "train.steps=4", "--resume"))
    assert f"cannot resume {run}: its config.json is corrupt" in err


def test_download_of_a_missing_archive(capsys, tmp_path):
    err = one_line(capsys, ["download", "cifar10", "--data-dir", str(tmp_path), "--archive", str(tmp_path / "nope.tar.gz")])
    assert f"--archive {tmp_path / 'nope.tar.gz'} is not a file" in err
    assert not (tmp_path / "cifar10").exists()


def test_download_repairs_a_missing_or_truncated_batch(tmp_path, capsys):
    archive = cifar10_archive(tmp_path / "cifar-10-python.tar.gz")
    md5 = md5_file(archive)
    root = tmp_path / "data"
    folder = install("cifar10", root, archive=archive, md5=md5)
    intact = (folder / "data_batch_1").stat().st_mtime_ns
    assert install("cifar10", root, archive=archive, md5=md5) == folder
    assert (folder / "data_batch_1").stat().st_mtime_ns == intact  # intact: nothing redone

    (folder / "data_batch_3").unlink()
    install("cifar10", root, archive=archive, md5=md5)
    assert "data_batch_3 is missing" in capsys.readouterr().err
    assert (folder / "data_batch_3").is_file()

    good = (folder / "data_batch_2").read_bytes()
    (folder / "data_batch_2").write_bytes(good[: len(good) // 2])
    install("cifar10", root, archive=archive, md5=md5)
    assert "data_batch_2 is truncated or corrupt" in capsys.readouterr().err
    assert (folder / "data_batch_2").read_bytes() == good
    assert pickle.loads(good, encoding="latin1") is not None
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".download-")]


def test_download_command_says_ready_only_when_the_data_loads(tmp_path, capsys, monkeypatch):
    from harness.data import download

    archive = cifar10_archive(tmp_path / "cifar-10-python.tar.gz")
    monkeypatch.setitem(download.ARCHIVES, "cifar10", download.Archive("file://x", md5_file(archive), "cifar-10-batches-py", "cifar10"))
    root = tmp_path / "data"
    assert cli.main(["download", "cifar10", "--data-dir", str(root), "--archive", str(archive)]) == 0
    shutil.rmtree(tmp_path / "staging")
    (root / "cifar10" / "cifar-10-batches-py" / "test_batch").unlink()
    assert cli.main(["download", "cifar10", "--data-dir", str(root), "--archive", str(archive)]) == 0
    captured = capsys.readouterr()
    assert "test_batch is missing" in captured.err and "cifar10 ready at" in captured.out
    assert (root / "cifar10" / "cifar-10-batches-py" / "test_batch").is_file()
