"""Sweeps on a real local Ray (2 CPUs): smoke-sized runs, one Ray instance for the module."""
import os

import pandas as pd
import pytest
import torch

from harness import cli
from harness.runs import sweep
from harness.errors import HarnessError
from harness.runs.fileio import read_json
from harness.runs.run import bench
from harness.strategies.ws import WeightSharing
from harness.runs.sweep import Cell, run_cells, summary_table

# Few steps: the sweep machinery is under test, not the numbers.
TINY = ("train.steps=6", "eval.bootstrap=10")


@pytest.fixture(scope="module")
def ray_local(data_dir):
    ray = pytest.importorskip("ray")
    os.environ["HARNESS_DATA"] = str(data_dir)
    started = not ray.is_initialized()
    if started:
        sweep._start_ray(None, str(data_dir))
    yield ray
    if started:
        ray.shutdown()


def _mtimes(run_dir):
    return {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}


def test_cli_sweep_2_strategies_x_2_seeds_then_again_does_no_work(ray_local, tmp_path, capsys, monkeypatch):
    args = ["sweep", "--strategies", "ws,params", "--seeds", "0,1", "--preset", "smoke", "--runs-dir", str(tmp_path),
            "--no-progress"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    names = [f"{s}-nb201-smoke-seed{seed}" for s in ("ws", "params") for seed in (0, 1)]
    for name in names:
        assert read_json(tmp_path / name / "status.json")["state"] == "complete"
        assert name in out
    assert "4/4 runs complete" in out and "| state" in out
    before = {name: _mtimes(tmp_path / name) for name in names}

    def no_work(*_a, **_k):
        raise AssertionError("a complete sweep started Ray")

    monkeypatch.setattr(sweep, "_execute", no_work)
    assert cli.main(args) == 0
    assert "4/4 runs complete" in capsys.readouterr().out
    assert before == {name: _mtimes(tmp_path / name) for name in names}


def test_a_bad_option_and_a_failing_run_do_not_stop_the_others(ray_local, tmp_path):
    # A corrupt checkpoint makes one run fail inside its worker; the others must still finish.
    broken = Cell("ws", preset="smoke", seed=1, overrides=TINY)
    bench(sweep.cell_request(broken, tmp_path))
    run_dir = next(tmp_path.iterdir())
    (run_dir / "metrics.json").unlink()
    (run_dir / "status.json").write_text('{"state": "interrupted"}')
    (run_dir / "checkpoint.pt").write_bytes(b"not a checkpoint")
    cells = [
        Cell("ws", preset="smoke", seed=0, overrides=TINY),
        Cell("params", preset="smoke", seed=0, overrides=TINY + ("strategy.params.nope=1",)),
        broken,
        Cell("params", preset="smoke", seed=0, overrides=TINY),
    ]
    results = run_cells(cells, tmp_path, progress=False)
    states = [r.state for r in results]
    assert states == ["complete", "invalid", "failed", "complete"], [(r.state, r.error) for r in results]
    assert "unknown key in [strategy.params] 'nope'" in results[1].error and "\n" not in results[1].error
    assert "checkpoint is corrupt" in results[2].error
    table = summary_table(results)
    assert "invalid" in table and "failed" in table and table.count("complete") == 2


def test_interrupted_sweep_reruns_nothing_finished_and_matches_an_uninterrupted_one(ray_local, tmp_path, monkeypatch):
    cells = [Cell("ws", preset="smoke", seed=s, overrides=TINY + ("train.checkpoint_every=2",)) for s in (0, 1)]
    straight = run_cells(cells, tmp_path / "straight", progress=False)
    assert [r.state for r in straight] == ["complete", "complete"]

    # The interrupted sweep: seed 0 finished, seed 1 killed at step 5 (checkpoint at step 4).
    broken = tmp_path / "broken"
    run_cells(cells[:1], broken, progress=False)
    original = WeightSharing.train_step

    def dies(self, step, images, labels, arch=None):
        if step == 4:
            raise KeyboardInterrupt
        return original(self, step, images, labels, arch)

    monkeypatch.setattr(WeightSharing, "train_step", dies)
    with pytest.raises(KeyboardInterrupt):
        bench(sweep.cell_request(cells[1], broken))
    monkeypatch.setattr(WeightSharing, "train_step", original)
    finished = sweep.cell_request(cells[0], broken)
    finished_dir = broken / sweep_name(finished)
    before = _mtimes(finished_dir)

    again = run_cells(cells, broken, progress=False)
    assert [r.state for r in again] == ["complete", "complete"]
    assert _mtimes(finished_dir) == before  # not redone
    assert "resumed from checkpoint at step 4" in (again[1].run_dir / "run.log").read_text()
    for a, b in zip(straight, again):
        assert a.run_dir.name == b.run_dir.name and a.kendall_tau == b.kendall_tau
        pd.testing.assert_frame_equal(pd.read_csv(a.run_dir / "predictions.csv"), pd.read_csv(b.run_dir / "predictions.csv"))


def sweep_name(req):
    from harness.runs.run import run_name

    return run_name(req)


def test_every_cell_is_validated_before_ray_starts(tmp_path, monkeypatch, env_data):
    def no_ray(*_a, **_k):
        raise AssertionError("Ray started")

    monkeypatch.setattr(sweep, "_start_ray", no_ray)
    results = run_cells([Cell("nope", preset="smoke"), Cell("ws", preset="smoke", overrides=("train.lr=nan",))], tmp_path)
    assert [r.state for r in results] == ["invalid", "invalid"]
    assert "unknown strategy 'nope'" in results[0].error and "train.lr=nan must be a finite number" in results[1].error
    with pytest.raises(HarnessError, match="write the same run directory"):
        run_cells([Cell("ws", preset="smoke"), Cell("ws", preset="smoke")], tmp_path)


def test_cpus_per_run_sets_the_thread_count_and_so_the_identity(tmp_path):
    one = sweep.cell_request(Cell("ws", preset="smoke"), tmp_path, cpus_per_run=1)
    assert one.overrides == ()  # the preset already pins 1 thread: same run directory as `bench`
    two = sweep.cell_request(Cell("ws", preset="smoke"), tmp_path, cpus_per_run=2)
    assert two.overrides == ("compute.threads=2",)
    labelled = sweep.cell_request(Cell("ws", preset="smoke", label="lowlr", overrides=("train.lr=0.01",)), tmp_path)
    assert labelled.name == "ws-nb201-smoke-lowlr-seed0"


def test_a_worker_that_cannot_see_the_runs_directory_says_so(tmp_path, env_data):
    # Only a shared filesystem is supported: a worker without the driver's marker file refuses to run.
    req = sweep.cell_request(Cell("ws", preset="smoke"), tmp_path)
    out = sweep._run_cell(req, ".sweep-marker-the-driver-wrote-elsewhere")
    assert out["state"] == "failed" and "is not shared with worker host" in out["error"]
    assert not any(tmp_path.iterdir())


def test_sweep_cli_errors_are_one_line(capsys, tmp_path):
    for args, fragment in [
        (["--seeds", "0,x"], "--seeds: 'x' is not a seed"),
        (["--override-set", "bad"], "--override-set 'bad' is not of the form"),
        (["--cpus-per-run", "0"], "--cpus-per-run 0.0 must be > 0"),
    ]:
        code = cli.main(["sweep", "--strategies", "ws", "--preset", "smoke", "--runs-dir", str(tmp_path), *args])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("error: ") and "\n" not in err and fragment in err, err


def test_override_sets_are_a_grid_dimension():
    from harness.commands.sweep import build_cells, parse_override_set

    name, sets = parse_override_set("low:train.lr=0.01,train.momentum=0.5")
    assert (name, sets) == ("low", ("train.lr=0.01", "train.momentum=0.5"))
    cells = build_cells(["ws", "params"], [0, 1], ["smoke"], ["nb201"], ["eval.bootstrap=10"], [(name, sets), ("base", ("train.lr=0.05",))])
    assert len(cells) == 8 and {c.label for c in cells} == {"low", "base"}
    assert all(c.overrides[0] == "eval.bootstrap=10" for c in cells)


def test_paper_runs_what_is_missing_through_the_sweep(ray_local, tmp_path, capsys):
    spec = tmp_path / "tiny.toml"
    spec.write_text('title = "tiny"\npreset = "smoke"\nseeds = [0, 1]\n\n[[metrics]]\npath = "metrics.kendall_tau"\n'
                    'header = "tau"\n\n[[runs]]\nstrategy = "params"\nlabel = "params"\n')
    runs = tmp_path / "runs"
    assert cli.main(["paper", str(spec), "--runs-dir", str(runs), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "running 2 missing or partial runs through the sweep" in out
    for seed in (0, 1):
        assert read_json(runs / f"params-nb201-smoke-seed{seed}" / "status.json")["state"] == "complete"
    assert cli.main(["paper", str(spec), "--runs-dir", str(runs), "--out", str(tmp_path / "out")]) == 0
    assert "through the sweep" not in capsys.readouterr().out  # nothing missing: nothing run
