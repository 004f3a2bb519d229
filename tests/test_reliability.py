"""Faults a user meets outside the happy path: full and read-only disks, signals to a sweep, resources a cluster
lacks, out-of-range inputs, damaged runs. Each ends with one line (no traceback) and leaves the runs resumable."""
from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from harness import cli
from harness.errors import HarnessError
from harness.runs import run as run_module
from harness.runs.fileio import read_json, write_json
from harness.runs.run import BenchRequest, bench

REPO = Path(__file__).resolve().parents[1]
SMOKE = ["--strategy", "ws", "--preset", "smoke", "--no-progress"]


def smoke(runs_dir, **kw):
    return BenchRequest(**{"strategy": "ws", "preset": "smoke", "runs_dir": runs_dir, "progress": False, **kw})


def cli_error(capsys, argv, code=2) -> str:
    assert cli.main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory, data_dir):
    """One complete smoke run, copied by the tests that damage or re-read it."""
    old = os.environ.get("HARNESS_DATA")
    os.environ["HARNESS_DATA"] = str(data_dir)
    try:
        root = tmp_path_factory.mktemp("complete")
        bench(smoke(root))
    finally:
        if old is None:
            os.environ.pop("HARNESS_DATA")
        else:
            os.environ["HARNESS_DATA"] = old
    return root / "ws-nb201-smoke-seed0"


def copy_run(run: Path, runs_dir: Path) -> Path:
    shutil.copytree(run, runs_dir / run.name)
    return runs_dir / run.name


class DiskFills:
    """A disk that fills up under `root` once the training checkpoint of step `at_step` is written: torch's own
    file writer then fails the way it does on a full disk (a RuntimeError about stream positions), and plain
    writes of large files fail with ENOSPC. Small JSON files still fit, as on a real disk with a few KB left."""

    def __init__(self, monkeypatch, root: Path, at_step: int) -> None:
        self.root, self.at_step, self.full = str(root), at_step, False
        real_save, real_write = torch.save, os.write

        def save(obj, f, *args, **kwargs):
            if isinstance(obj, dict) and obj.get("step", -1) >= self.at_step and "strategy" in obj:
                self.full = True
            if self.full and isinstance(f, (str, Path)) and str(f).startswith(self.root):
                Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
                raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4096 vs 12288")
            return real_save(obj, f, *args, **kwargs)

        def write(fd, data):
            if self.full and len(data) > 4096:
                try:
                    target = os.readlink(f"/proc/self/fd/{fd}")
                except OSError:
                    target = ""
                if target.startswith(self.root):
                    raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)

        monkeypatch.setattr(torch, "save", save)
        monkeypatch.setattr(os, "write", write)


# --- D1: the disk fills while a training checkpoint is written -------------------------------------------------

def test_disk_full_while_checkpointing_is_one_line_and_an_interrupted_run(tmp_path, env_data, monkeypatch, capsys):
    DiskFills(monkeypatch, tmp_path, at_step=4)
    err = cli_error(capsys, ["bench", *SMOKE, "--runs-dir", str(tmp_path)])
    run = tmp_path / "ws-nb201-smoke-seed0"
    assert "is full" in err and "No space left on device" in err and str(run) in err and "--resume" in err, err
    status = read_json(run / "status.json")
    assert status["state"] == "interrupted" and status["phase"] == "training"
    # The latest checkpoint is the last complete one (step 0), not half of the step-4 one.
    assert torch.load(run / "checkpoint.pt", weights_only=False)["step"] == 0
    assert not list(run.glob(".*.tmp"))
    monkeypatch.undo()  # space freed
    monkeypatch.setenv("HARNESS_DATA", str(env_data))
    assert bench(smoke(tmp_path, resume=True))["metrics"]["num_archs"] == 20


# --- D2: the disk is full before the run starts ------------------------------------------------------------------

def test_disk_full_before_the_run_starts_leaves_nothing(tmp_path, env_data, monkeypatch, capsys):
    real = run_module.write_json

    def full(path, data):
        if Path(path).name == "config.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(run_module, "write_json", full)
    runs = tmp_path / "runs"
    err = cli_error(capsys, ["bench", *SMOKE, "--runs-dir", str(runs)])
    assert "could not start" in err and "is full" in err and "ws-nb201-smoke-seed0" in err, err
    assert not runs.exists()


def test_disk_full_while_taking_the_lock_leaves_nothing(tmp_path, env_data, monkeypatch, capsys):
    from harness.runs import lock

    class FullFile:
        def __init__(self, handle):
            self.handle = handle

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def flush(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lock, "open", lambda path, mode: FullFile(open(path, mode)), raising=False)
    (tmp_path / "runs").mkdir()
    err = cli_error(capsys, ["bench", *SMOKE, "--runs-dir", str(tmp_path / "runs")])
    assert "could not start" in err and "No space left" in err, err
    assert list((tmp_path / "runs").iterdir()) == []


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    except OSError:
        return False
    return done.returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("when", ["training", "before start"])
def test_full_tmpfs_runs_dir_ends_with_one_line(tmp_path, data_dir, when):
    mnt = tmp_path / "disk"
    # A 128 KiB disk holds a run's small files but not its ~200 KB checkpoint; a filled one not even the lock.
    if not _tmpfs(mnt, "128k"):
        pytest.skip("needs permission to mount a tmpfs (root)")
    try:
        if when == "before start":
            with open(mnt / "filler", "wb") as handle:
                try:
                    handle.write(b"\0" * (1 << 20))
                    handle.flush()
                except OSError:
                    pass
        env = {**os.environ, "HARNESS_DATA": str(data_dir), "OMP_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-m", "harness", "bench", *SMOKE, "--runs-dir", str(mnt / "runs")],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        err = done.stderr.strip()
        assert done.returncode == 2 and err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
        assert "is full" in err, err
        run = mnt / "runs" / "ws-nb201-smoke-seed0"
        if when == "training":
            assert read_json(run / "status.json")["state"] == "interrupted"
            assert not (run / "checkpoint.pt").exists() and not list(run.glob(".*.tmp"))
        else:
            assert not (mnt / "runs").exists()
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


# --- D3: SIGTERM to a sweep driver ------------------------------------------------------------------------------

FAKE_RAY_SWEEP = textwrap.dedent('''
    import os, signal, sys, time
    from pathlib import Path
    import harness.runs.sweep as sweep
    from harness.runs.fileio import write_json
    from harness.runs.run import run_name

    class FakeRay:
        """Starts each task by marking its run running (as a worker would), then the driver gets SIGTERM."""
        def remote(self, fn):
            class Task:
                def options(self, **kw):
                    return self
                def remote(self, req, marker):
                    run = Path(req.runs_dir) / run_name(req)
                    run.mkdir(parents=True, exist_ok=True)
                    write_json(run / "status.json", {"state": "running", "phase": "training", "step": 3})
                    return object()
            return Task()
        def wait(self, refs, num_returns=1, timeout=None):
            if timeout is None:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)
            return [], refs
        def cancel(self, ref, **kw):
            print("cancelled", flush=True)
        def shutdown(self):
            print("ray shut down", flush=True)

    sweep._start_ray = lambda address, data_dir, num_cpus=None: (FakeRay(), True)
    sweep.STOP_GRACE_SECONDS = 0.1
    from harness.cli import main
    sys.exit(main(["sweep", "--strategies", "ws,params", "--preset", "smoke", "--runs-dir", sys.argv[1], "--no-progress"]))
''')


def test_sigterm_to_a_sweep_driver_stops_its_tasks_and_records_them(tmp_path, data_dir):
    env = {**os.environ, "HARNESS_DATA": str(data_dir), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", FAKE_RAY_SWEEP, str(tmp_path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 128 + signal.SIGTERM, (done.returncode, done.stderr)
    err = done.stderr.strip()
    assert err.startswith("error: interrupted by SIGTERM") and "\n" not in err and "--resume" not in err, err
    assert done.stdout.count("cancelled") == 2 and "ray shut down" in done.stdout
    for name in ("ws-nb201-smoke-seed0", "params-nb201-smoke-seed0"):
        assert read_json(tmp_path / name / "status.json")["state"] == "interrupted"


def test_a_run_still_locked_is_not_marked_by_the_driver(tmp_path):
    from harness.runs.lock import RunLock
    from harness.runs.sweep import mark_interrupted

    write_json(tmp_path / "status.json", {"state": "running", "step": 3})
    with RunLock(tmp_path):
        assert not mark_interrupted(tmp_path, "stopped")
    assert read_json(tmp_path / "status.json")["state"] == "running"
    assert mark_interrupted(tmp_path, "stopped")
    assert read_json(tmp_path / "status.json")["state"] == "interrupted"


# --- D4: more GPUs (or CPUs) per run than the machine or cluster has ---------------------------------------------

def _no_ray(*_a, **_k):
    raise AssertionError("Ray must not start")


@pytest.mark.skipif(torch.cuda.device_count() > 0, reason="this machine has a GPU")
def test_gpus_per_run_beyond_the_machine_is_refused_before_ray(tmp_path, env_data, monkeypatch, capsys):
    from harness.runs import sweep

    monkeypatch.setattr(sweep, "_start_ray", _no_ray)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    err = cli_error(capsys, ["sweep", "--strategies", "ws", "--preset", "smoke", "--runs-dir", str(tmp_path), "--gpus-per-run", "1"])
    assert "--gpus-per-run 1" in err and "0 GPUs" in err and "CPU" in err, err
    err = cli_error(capsys, ["sweep", "--strategies", "ws", "--preset", "smoke", "--runs-dir", str(tmp_path),
                             "--cpus-per-run", str(os.cpu_count() + 1)])
    assert "--cpus-per-run" in err and f"{os.cpu_count()} CPUs" in err, err


def test_a_cluster_without_gpus_is_refused_before_any_task(tmp_path, env_data, monkeypatch):
    from harness.runs import sweep

    class Cluster:
        submitted, stopped = [], []

        def cluster_resources(self):
            return {"CPU": 8.0, "memory": 1e9}

        def remote(self, fn):
            self.submitted.append(fn)

        def shutdown(self):
            self.stopped.append(True)

    monkeypatch.setattr(sweep, "_start_ray", lambda address, data_dir, num_cpus=None: (Cluster(), True))
    with pytest.raises(HarnessError, match=r"--gpus-per-run 2 asks for more GPUs than the Ray cluster has \(0 GPUs"):
        sweep.run_cells([sweep.Cell("ws", preset="smoke")], tmp_path, address="ray://head:10001", gpus_per_run=2)
    assert Cluster.submitted == [] and Cluster.stopped == [True]


# --- D5, D6, D9, D10, D11: inputs refused with one line before any work ----------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["--seed", "99999999999999999999999"], "--seed 99999999999999999999999 must be an integer >= 0 and < 2**63; accepted: 0..9223372036854775807"),
    (["--seed", str(2**63)], "must be an integer >= 0 and < 2**63"),
    (["--name", "a" * 300], "--name of 300 bytes is too long; accepted: at most 200 bytes"),
    (["--name", "tab\there"], "control characters"),
    (["--set", "data.dataset=imagenet"], "unknown data.dataset 'imagenet'; accepted: cifar10, cifar100"),
    (["--set", "eval.ground_truth=foo"], "unknown eval.ground_truth 'foo'; accepted: cifar100_test, cifar10_test, imagenet16_120_test (the ground-truth columns"),
])
def test_bad_run_inputs_are_one_line_before_any_work(capsys, tmp_path, env_data, monkeypatch, args, fragment):
    monkeypatch.setattr(run_module, "DeviceData", _no_ray)  # loading the images is work: refused before it
    err = cli_error(capsys, ["bench", *SMOKE, "--runs-dir", str(tmp_path), *args])
    assert fragment in err, err
    assert "imagenet_test" not in err and not any(tmp_path.iterdir())


def test_the_largest_seed_is_accepted(tmp_path, env_data):
    from harness.runs.run import plan

    assert plan(smoke(tmp_path, seed=2**63 - 1)).req.seed == 2**63 - 1


def test_sweep_seeds_out_of_range_are_one_line(capsys, tmp_path, monkeypatch):
    from harness.runs import sweep

    monkeypatch.setattr(sweep, "_start_ray", _no_ray)
    err = cli_error(capsys, ["sweep", "--strategies", "ws", "--preset", "smoke", "--runs-dir", str(tmp_path),
                             "--seeds", "99999999999999999999999"])
    assert "0..9223372036854775807" in err, err
    err = cli_error(capsys, ["sweep", "--strategies", "ws", "--runs-dir", str(tmp_path), "--seeds", "0-99999999"])
    assert "more than 10000 seeds" in err, err


def test_nb201_ground_truth_columns_match_the_table():
    from harness.registry import SPACES
    from harness.scoring.groundtruth import COLUMNS

    assert SPACES.get("nb201").ground_truth_columns == COLUMNS


@pytest.mark.parametrize("path", ["/nonexistent", "FILE"])
def test_tables_on_a_missing_runs_dir_is_one_line(capsys, tmp_path, path):
    if path == "FILE":
        path = str(tmp_path / "file")
        Path(path).write_text("x")
    err = cli_error(capsys, ["tables", "--runs-dir", path, "--out", str(tmp_path / "out")])
    assert f"--runs-dir {path}" in err, err
    assert not (tmp_path / "out").exists()


def test_num_archs_beyond_the_space_is_refused(capsys, tmp_path, env_data, monkeypatch):
    monkeypatch.setattr(run_module, "DeviceData", _no_ray)
    err = cli_error(capsys, ["bench", *SMOKE, "--runs-dir", str(tmp_path), "--set", "eval.num_archs=100000"])
    assert "eval.num_archs=100000 is more than the 15625 architectures" in err, err
    assert not any(tmp_path.iterdir())


def test_ground_truth_not_found_names_harness_data(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    err = cli_error(capsys, ["bench", *SMOKE, "--runs-dir", str(tmp_path / "runs")])
    assert "(set $HARNESS_DATA or --data-dir to the data directory; now" in err, err
    err = cli_error(capsys, ["bench", *SMOKE, "--space", "nb101", "--runs-dir", str(tmp_path / "runs")])
    assert "(set $HARNESS_DATA or --data-dir to the data directory)" in err, err


# --- D7: a read-only runs directory ------------------------------------------------------------------------------

def test_read_only_runs_dir_serves_complete_runs(tmp_path, env_data, complete_run, monkeypatch, capsys):
    from harness.runs import lock, sweep

    copy_run(complete_run, tmp_path)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if mode & os.W_OK else real_access(p, mode, **k))

    def read_only(self):
        raise OSError(errno.EROFS, "Read-only file system", str(self.path))

    monkeypatch.setattr(lock.RunLock, "__enter__", read_only)
    monkeypatch.setattr(sweep, "_start_ray", _no_ray)
    metrics = bench(smoke(tmp_path, resume=True))
    assert metrics == read_json(tmp_path / complete_run.name / "metrics.json")
    assert cli.main(["sweep", "--strategies", "ws", "--preset", "smoke", "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1/1 runs complete" in out and f"{metrics['metrics']['kendall_tau']:.4f}" in out  # the sweep table's format
    # Work that must write is still refused, with its reason.
    results = sweep.prepare([sweep.Cell("ws", preset="smoke", seed=1)], tmp_path, 1.0, None)[1]
    assert results[0].state == "invalid" and "not writable" in results[0].error


# --- D8: Ctrl-C of a sweep ----------------------------------------------------------------------------------------

def test_ctrl_c_of_a_sweep_suggests_a_step_that_works(capsys, tmp_path, monkeypatch):
    from harness.runs import sweep

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "run_cells", interrupted)
    err = cli_error(capsys, ["sweep", "--strategies", "ws", "--runs-dir", str(tmp_path)], code=130)
    assert "--resume" not in err and "rerun the same command" in err, err
    args = cli.build_parser().parse_args(["sweep", "--strategies", "ws"])
    assert not hasattr(args, "resume")  # what the message relies on: `sweep --resume` does not exist


# --- D12: a complete run whose predictions were deleted ------------------------------------------------------------

def test_deleted_predictions_are_detected_and_rebuilt(tmp_path, env_data, complete_run, capsys):
    from harness.runs import sweep

    run = copy_run(complete_run, tmp_path)
    (run / "predictions.csv").unlink()
    results = sweep.prepare([sweep.Cell("ws", preset="smoke")], tmp_path, 1.0, None)[1]
    assert results == [None]  # not skipped as complete: the sweep resumes it
    with pytest.raises(HarnessError, match=r"status: complete, damaged: predictions.csv missing"):
        bench(smoke(tmp_path))
    bench(smoke(tmp_path, resume=True))
    assert "is damaged (predictions.csv missing): rebuilding from estimates.npz" in capsys.readouterr().out
    assert (run / "predictions.csv").read_bytes() == (complete_run / "predictions.csv").read_bytes()


def test_damaged_run_without_anything_to_rebuild_from_is_one_line(tmp_path, env_data, complete_run, capsys):
    run = copy_run(complete_run, tmp_path)
    for name in ("predictions.csv", "estimates.npz", "checkpoint.pt"):
        (run / name).unlink()
    err = cli_error(capsys, ["bench", *SMOKE, "--runs-dir", str(tmp_path), "--resume"])
    assert "is damaged: predictions.csv missing" in err and "delete the directory" in err, err
    assert read_json(run / "status.json")["state"] == "complete"


# --- D13: describe of an NB101 sample row -------------------------------------------------------------------------

def test_describe_nb101_names_the_csv_row_and_its_hash_class(capsys, data_dir):
    sample = pd.read_csv(data_dir / "nb101" / "nb101_sample500.csv", dtype=str)
    from harness.spaces.nb101.cell import Cell

    hashes = [Cell.parse(f"{a}|{o}").hash for a, o in zip(sample["adjacency"], sample["ops"])]
    for row in (0, next(i for i, h in enumerate(hashes) if hashes.count(h) > 1)):
        arch = f"{sample['adjacency'][row]}|{sample['ops'][row]}"
        assert cli.main(["describe", "--space", "nb101", arch, "--data-dir", str(data_dir)]) == 0
        line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("ground truth"))
        rows = [i for i, h in enumerate(hashes) if h == hashes[row]]
        assert f"data row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows[:10]))}" in line, line
        assert (f"{len(rows)} rows of it share this graph hash" if len(rows) > 1 else "the only row with this graph hash") in line


# --- D14: regress against a baseline of another preset ------------------------------------------------------------

def test_regress_with_a_baseline_of_another_preset_is_refused_before_work(capsys, monkeypatch, tmp_path):
    from harness.gate import regression

    monkeypatch.setattr(regression, "run_set", _no_ray)
    monkeypatch.setattr(regression, "determinism", _no_ray)
    baseline = regression.load_baseline(regression.BASELINE_FILE)
    assert baseline is not None and baseline.preset != "smoke"
    err = cli_error(capsys, ["regress", "--preset", "smoke", "--runs-dir", str(tmp_path)])
    assert f"recorded on preset {baseline.preset}" in err and "--preset smoke" in err, err
    assert not any(tmp_path.iterdir())


# --- Also seen ------------------------------------------------------------------------------------------------------

def test_bench_summary_says_where_the_run_directory_is(capsys, tmp_path, env_data, complete_run):
    copy_run(complete_run, tmp_path)
    assert cli.main(["bench", *SMOKE, "--runs-dir", str(tmp_path), "--resume"]) == 0
    assert f"run directory   {tmp_path / complete_run.name}" in capsys.readouterr().out


def test_every_command_takes_the_same_seed_syntax():
    from harness.commands.sweep import parse_seeds as sweep_seeds
    from harness.reports.compare import parse_seeds as compare_seeds

    for text, seeds in (("0-2", [0, 1, 2]), ("0,1,5", [0, 1, 5]), ("0-2,7,1", [0, 1, 2, 7])):
        assert sweep_seeds(text) == compare_seeds(text) == seeds


def test_sweep_footer_suggests_a_rerun_only_where_it_helps():
    from harness.commands.sweep import sweep_footer
    from harness.runs.sweep import Cell, CellResult

    def result(state):
        return CellResult(Cell("ws"), Path("r"), state, None if state == "complete" else "why", None)

    assert sweep_footer([result("complete")]) == "1/1 runs complete"
    invalid = sweep_footer([result("complete"), result("invalid")])
    assert "rerun the same command" not in invalid and "1 invalid" in invalid
    assert "1 interrupted: rerun the same command to resume" in sweep_footer([result("interrupted"), result("refused")])


def test_paper_prints_its_plan_and_needs_yes_for_many_runs(capsys, tmp_path, monkeypatch):
    from harness.runs import sweep

    monkeypatch.setattr(sweep, "run_cells", _no_ray)
    assert cli.main(["paper", "ranking", "--runs-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    out, err = capsys.readouterr()
    assert "\n" not in err.strip() and "Traceback" not in err
    assert "--yes" in err and "runs to start" in err, err
    assert "plan:" in out and "CPU-min each" in out and "CPU-hours" in out, out


def test_a_log_line_on_a_full_disk_prints_no_traceback(tmp_path, capsys):
    log = run_module._logger(tmp_path)
    try:
        class FullDisk:
            def write(self, text):
                raise OSError(errno.ENOSPC, "No space left on device")

            def flush(self):
                pass

            def close(self):
                pass

        log.handlers[0].stream = FullDisk()
        log.info("a line that cannot be written")
    finally:
        run_module._close_logger(log)
    assert "Traceback" not in capsys.readouterr().err


def test_ray_that_cannot_start_is_one_line(monkeypatch):
    ray = pytest.importorskip("ray")
    from harness.runs import sweep

    def timed_out(**_kwargs):
        raise Exception("The current node timed out during startup. This could happen because ...")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", timed_out)
    with pytest.raises(HarnessError, match="could not start a local Ray: The current node timed out during startup"):
        sweep._start_ray(None, None)
