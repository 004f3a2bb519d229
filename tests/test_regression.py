"""The CI gate: mean tau of K seeds against the baseline mean with a tolerance from the recorded seed sd,
identical strategies, determinism, and the planted-fault selftest's bookkeeping (fake runs throughout,
one real smoke determinism check)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from harness.gate import regression
from harness.gate import selftest as gate_selftest
from harness.cli import main
from harness.errors import HarnessError
from harness.gate.regression import Baseline, Outcome, StrategyBaseline, check, determinism, identical_strategies, load_baseline, record
from harness.runs.sweep import CellResult

Z = 1.6448536269514722


def base(**taus: list[float]) -> Baseline:
    taus = taus or {"ws": [0.40, 0.30, 0.50, 0.40]}
    return Baseline("regress", {name: StrategyBaseline(list(range(len(t))), t, float(np.mean(t)), float(np.std(t, ddof=1)))
                                for name, t in taus.items()})


def outcomes(name: str, taus: list[float], error: str | None = None) -> list[Outcome]:
    return [Outcome(name, seed, tau, 60.0, error) for seed, tau in enumerate(taus)]


def test_tolerance_is_t_with_the_sds_degrees_of_freedom():
    b = base()
    sd = float(np.std([0.40, 0.30, 0.50, 0.40], ddof=1))
    t3 = sps.t.ppf(0.95, 3)  # one strategy of 4 seeds: its own sd, 3 df
    assert regression.tolerance(b, "ws", 4) == pytest.approx(t3 * math.sqrt(2) * sd / 2)
    assert regression.smallest_caught_drops(b, 4)["ws"] == pytest.approx(t3 * math.sqrt(2) * sd / 2)
    assert regression.tolerance(b, "ws", 2) == pytest.approx(t3 * sd * math.sqrt(1 / 2 + 1 / 4))


def test_two_strategies_pool_their_sds_with_summed_degrees_of_freedom():
    ws, dinas = [0.40, 0.30, 0.50, 0.40], [0.20, 0.25, 0.10, 0.15]
    b = base(ws=ws, dinas=dinas)
    pooled = math.sqrt((np.var(ws, ddof=1) + np.var(dinas, ddof=1)) / 2)
    assert regression.seed_scale(b, "ws")[:2] == (pytest.approx(pooled), 6)
    assert regression.tolerance(b, "dinas", 4) == pytest.approx(sps.t.ppf(0.95, 6) * pooled * math.sqrt(0.5))
    b.pool_sd = False
    assert regression.seed_scale(b, "dinas")[:2] == (pytest.approx(np.std(dinas, ddof=1)), 3)
    assert regression.tolerance(b, "dinas", 4) == pytest.approx(sps.t.ppf(0.95, 3) * np.std(dinas, ddof=1) * math.sqrt(0.5))


def test_notes_state_the_per_strategy_and_whole_gate_rates_and_the_seed_relation():
    b = base(ws=[0.40, 0.30, 0.50, 0.40], dinas=[0.20, 0.25, 0.10, 0.15])
    _failures, notes = check(b, outcomes("ws", [0.4] * 4) + outcomes("dinas", [0.2] * 4))
    assert "pooled over ws, dinas, 6 df" in notes[0] and "the baseline's own seeds" in notes[0]
    assert notes[-1].startswith("false-alarm rate 0.050 per strategy") and "at most 0.0975 = 1 - (1 - 0.05)^2" in notes[-1]
    assert "Bartlett p of equal sds" in notes[-1]
    fresh = [Outcome("ws", seed, 0.4, 60.0) for seed in (10, 11, 12, 13)]
    assert "fresh seeds" in check(b, fresh + outcomes("dinas", [0.2] * 4))[1][0]
    assert "shared with the baseline" in regression.seed_relation([0, 1, 2, 3], [2, 3, 4, 5])


def test_equal_mean_passes_and_a_drop_beyond_the_tolerance_fails():
    b = base()
    tol = regression.tolerance(b, "ws", 4)
    failures, notes = check(b, outcomes("ws", [0.45, 0.35, 0.40, 0.40]))
    assert failures == [] and notes[0].endswith("ok")
    just_inside = 0.40 - tol + 1e-6
    assert check(b, outcomes("ws", [just_inside] * 4))[0] == []
    failures, _ = check(b, outcomes("ws", [0.40 - tol - 1e-3] * 4))
    assert len(failures) == 1 and failures[0].startswith("ws: mean tau") and "make rebaseline" in failures[0] and "\n" not in failures[0]


def test_a_rise_passes():
    assert check(base(), outcomes("ws", [0.9] * 4))[0] == []


def test_missing_strategy_unknown_strategy_failed_run_and_other_preset_fail():
    b = base(ws=[0.4, 0.3], dinas=[0.3, 0.2])
    failures, _ = check(b, outcomes("ws", [0.4, 0.3]))
    assert failures == ["dinas: in the baseline but not run (not registered any more?); if intended, `make rebaseline`"]
    failures, _ = check(base(), outcomes("ws", [0.4] * 4) + outcomes("new", [0.1, 0.2]))
    assert len(failures) == 1 and failures[0].startswith("new: no baseline")
    failures, _ = check(base(), outcomes("ws", [0.4, None, 0.4, 0.4]))
    assert "1 of 4 run(s) failed" in failures[0] and "tau undefined" in failures[0]
    failures, _ = check(base(), outcomes("ws", [None] * 4, error="training diverged"))
    assert "training diverged" in failures[0]
    failures, _ = check(base(), outcomes("ws", [0.4] * 4), preset="smoke")
    assert "recorded on preset regress" in failures[0]


def _run_dir(root: Path, name: str, estimates, tau: float | None = None) -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    est = np.asarray(estimates, dtype=float)
    pd.DataFrame({"index": range(len(est)), "estimate": est, "ground_truth": np.arange(len(est))}).to_csv(d / "predictions.csv", index=False)
    (d / "metrics.json").write_text(json.dumps({"wall_seconds": 1.0, "metrics": {"kendall_tau": tau}}))
    return d


def test_identical_predictions_of_two_strategies_fail(tmp_path):
    a = _run_dir(tmp_path, "ws0", [1, 2, 3])
    same = _run_dir(tmp_path, "dinas0", [1, 2, 3])
    other = _run_dir(tmp_path, "dinas1", [3, 2, 1])
    b1 = _run_dir(tmp_path, "ws1", [1, 2, 3])
    runs = [Outcome("ws", 0, 0.1, run_dir=str(a)), Outcome("dinas", 0, 0.1, run_dir=str(same)),
            Outcome("ws", 1, 0.1, run_dir=str(b1)), Outcome("dinas", 1, 0.1, run_dir=str(other))]
    failures = identical_strategies(runs)
    assert failures == ["ws and dinas give identical predictions on seed 0: whatever distinguishes them had no effect"]


def _fake_runner(taus: dict[str, list[float]] | None = None, jitter: list[int] | None = None):
    """A run_cells stand-in writing predictions and metrics; `jitter` makes successive calls differ."""
    calls = jitter if jitter is not None else None

    def run(cells, runs_dir, **_kw):
        results = []
        bump = calls.pop(0) if calls else 0
        for cell in cells:
            tau = (taus or {}).get(cell.strategy, [0.3] * 10)[cell.seed]
            est = np.arange(5.0) * (1 + cell.seed) + hash(cell.strategy) % 7 + bump
            d = _run_dir(Path(runs_dir), f"{cell.strategy}-{cell.preset}-seed{cell.seed}", est, tau)
            results.append(CellResult(cell, d, "complete", None, tau))
        return results

    return run


def test_determinism_passes_on_identical_reruns_and_fails_on_different_ones(tmp_path):
    assert determinism(["ws", "dinas"], tmp_path / "a", runner=_fake_runner()) == []
    failures = determinism(["ws"], tmp_path / "b", runner=_fake_runner(jitter=[0, 1]))
    assert len(failures) == 1 and failures[0].startswith("determinism: ws (smoke, seed 0) run twice gave different predictions")


def test_record_load_round_trip_and_old_format(tmp_path):
    path = tmp_path / "regress.json"
    record(outcomes("ws", [0.4, 0.2]) + outcomes("dinas", [0.3, 0.3, 0.3]), path)
    loaded = load_baseline(path)
    assert loaded.preset == "regress" and loaded.strategies["ws"].taus == [0.4, 0.2]
    assert loaded.strategies["ws"].mean == pytest.approx(0.3) and loaded.strategies["ws"].sd == pytest.approx(math.sqrt(0.02))
    assert loaded.strategies["dinas"].sd == 0.0 and loaded.platform == regression.platform_key()
    assert loaded.pool_sd is True and json.loads(path.read_text())["pool_sd"] is True
    record(outcomes("ws", [0.4, 0.2]), path, pool_sd=False)
    assert load_baseline(path).pool_sd is False
    # the committed baseline (written before pool_sd existed) still loads, pooled
    committed = load_baseline(regression.BASELINE_FILE)
    assert committed.pool_sd is True and set(committed.strategies) >= {"ws"}
    with pytest.raises(HarnessError, match="cannot re-baseline: ws seed 0"):
        record(outcomes("ws", [None, 0.2], error="boom"), path)
    with pytest.raises(HarnessError, match="needs the seed sd"):
        record(outcomes("ws", [0.4]), path)
    path.write_text(json.dumps({"entries": [{"strategy": "ws", "tau": 0.2}]}))
    with pytest.raises(HarnessError, match="older format"):
        load_baseline(path)
    path.write_text(json.dumps({"format": 2, "preset": "regress", "strategies": {"ws": {"bogus": 1}}}))
    with pytest.raises(HarnessError, match="corrupt regression baseline"):
        load_baseline(path)
    assert load_baseline(tmp_path / "none.json") is None


def test_cli_rebaseline_then_regress_passes_then_fails_on_a_drop(tmp_path, monkeypatch, capsys):
    path = tmp_path / "regress.json"
    monkeypatch.setattr(regression, "run_cells", _fake_runner({"ws": [0.40, 0.30, 0.50, 0.40]}))
    common = ["--baseline", str(path), "--strategies", "ws", "--runs-dir", str(tmp_path / "runs")]
    assert main(["rebaseline", *common]) == 0
    out = capsys.readouterr().out
    assert "gate fails on a mean drop > 0.1359" in out  # t_{0.95,3} * 0.0816 * sqrt(1/4 + 1/4)
    assert "false-alarm rate 0.050 per strategy" in out
    assert main(["regress", *common, "--runs-dir", str(tmp_path / "r1")]) == 0
    monkeypatch.setattr(regression, "run_cells", _fake_runner({"ws": [0.25, 0.15, 0.35, 0.25]}))
    assert main(["regress", "--baseline", str(path), "--strategies", "ws", "--runs-dir", str(tmp_path / "r2")]) == 1
    err = capsys.readouterr().err
    assert "REGRESSION ws: mean tau over seeds 0,1,2,3 0.2500 vs baseline 0.4000" in err
    assert main(["regress", "--baseline", str(path), "--strategies", "ws", "--seeds", "1"]) == 2
    assert "needs >= 2 seeds" in capsys.readouterr().err


def test_cli_without_baseline_says_how_to_make_one(tmp_path, capsys):
    assert main(["regress", "--baseline", str(tmp_path / "none.json"), "--strategies", "ws"]) == 2
    assert "make rebaseline" in capsys.readouterr().err


def _selftest_runner(effects: dict[str | None, float], identical_fault: str, fresh_drop: float = 0.0, seen: list | None = None):
    """Fake worker pool: a fault lowers every tau by effects[fault]; `identical_fault` makes dinas copy ws;
    clean runs on seeds >= 100 (fresh) lose `fresh_drop`."""
    def run(jobs, runs_dir, data_dir, workers):
        out = []
        for cell, fault in jobs:
            if seen is not None:
                seen.append((cell.strategy, cell.seed, fault, cell.overrides))
            tau = 0.4 + 0.05 * (cell.seed % 2) - effects.get(fault, 0.0) - (fresh_drop if cell.seed >= 100 else 0.0)
            name = cell.strategy if fault != identical_fault else "ws"
            est = np.arange(5.0) + (1 if name == "dinas" else 0) * np.array([0, 0, 0, 2, -2]) + cell.seed
            d = _run_dir(Path(runs_dir) / (fault or "clean"), f"{cell.strategy}-seed{cell.seed}", est, tau)
            out.append(CellResult(cell, d, "complete", None, tau))
        return out

    return run


def test_selftest_counts_caught_faults_and_checks_clean_code(tmp_path):
    b = base(ws=[0.40, 0.45, 0.40, 0.45], dinas=[0.40, 0.45, 0.40, 0.45])
    quiet = lambda _line: None  # noqa: E731
    effects = {"sampler_gap": 0.2, "bn_running": 0.3, "lr_tenth": 0.2}
    args = (b, ["ws", "dinas"], [0, 1, 2, 3], "regress", tmp_path)
    assert gate_selftest.selftest(*args, runner=_selftest_runner(effects, "no_projection"), log=quiet) == (4, 4, True)
    # a fault without effect is reported as not caught
    weak = dict(effects, lr_tenth=0.0)
    assert gate_selftest.selftest(*args, runner=_selftest_runner(weak, "no_projection"), log=quiet) == (3, 4, True)
    # clean code below the baseline fails the selftest
    lowered = {None: 0.3, **effects}
    assert gate_selftest.selftest(*args, runner=_selftest_runner(lowered, "no_projection"), log=quiet)[2] is False
    # a fault whose targets are not gated is skipped, an unknown one refused
    assert gate_selftest.selftest(b, ["ws"], [0, 1], "regress", tmp_path / "w", faults=["no_projection", "lr_tenth"],
                                        runner=_selftest_runner(effects, "none"), log=quiet)[:2] == (1, 1)
    with pytest.raises(HarnessError, match="unknown planted faults"):
        gate_selftest.selftest(*args, faults=["typo"], log=quiet)


def test_selftest_runs_clean_code_on_fresh_seeds_and_reports_the_detection_curve(tmp_path):
    b = base(ws=[0.40, 0.45, 0.40, 0.45])
    lines: list[str] = []
    seen: list = []
    effects = {"sampler_gap": 0.2, "bn_running": 0.3, "lr_tenth": 0.2, "lr_quarter": 0.08, "lr_half": 0.01}
    result = gate_selftest.selftest(b, ["ws"], [0, 1, 2, 3], "regress", tmp_path / "a",
                                    runner=_selftest_runner(effects, "none", seen=seen), log=lines.append)
    # graded faults are not counted among the regressions that must be caught
    assert result == (3, 3, True)
    clean_seeds = sorted(seed for _s, seed, fault, _o in seen if fault is None)
    assert clean_seeds == [0, 1, 2, 3, 100, 101, 102, 103]
    assert any(line.startswith("selftest: clean code on fresh seeds 100-103 passed the gate") for line in lines)
    assert any(line.startswith("selftest: clean code on the gate's seeds 0-3 passed the gate") for line in lines)
    # the learning-rate faults are overrides of the preset's lr, run on the gate's seeds
    lrs = {fault: overrides for _s, _seed, fault, overrides in seen if fault and fault.startswith("lr_")}
    assert lrs == {"lr_half": ("train.lr=0.025",), "lr_quarter": ("train.lr=0.0125",), "lr_tenth": ("train.lr=0.005000000000000001",)}
    table = [line for line in lines if line.startswith("selftest: | lr x")]
    tol = regression.tolerance(b, "ws", 4)
    assert [row.split("|")[1].strip() for row in table] == ["lr x 0.5", "lr x 0.25", "lr x 0.1"]
    assert ("passes (missed)" in table[0]) == (0.01 <= tol) and "fails (caught)" in table[2]
    assert f"{0.08:+.4f}" in table[1] and f"{tol:.4f}" in table[1]
    # the same checks, one row per check and strategy, as the CSV the gate's docs render
    result = gate_selftest.selftest(b, ["ws"], [0, 1, 2, 3], "regress", tmp_path / "a", csv_path=tmp_path / "st.csv",
                                    runner=_selftest_runner(effects, "none"), log=lambda _line: None)
    rows = pd.read_csv(tmp_path / "st.csv", dtype=str).set_index("check")
    assert list(rows["gate"]) == ["passed", "passed", "caught", "caught", "caught", "missed" if 0.01 <= tol else "caught",
                                  "caught" if 0.08 > tol else "missed"]
    fresh_row = rows.loc["clean code, fresh seeds 100-103"]
    assert fresh_row["seeds"] == "100-103" and fresh_row["required"] == "must pass"
    quarter = rows.loc["lr_quarter: learning rate x 0.25"]
    assert float(quarter["drop"]) == pytest.approx(0.08) and float(quarter["allowed drop"]) == pytest.approx(tol, abs=1e-4)
    assert quarter["required"] == "graded: reported" and rows.loc["lr_tenth: learning rate x 0.1"]["required"] == "must be caught"
    # clean code that passes on the baseline's own seeds but drops on fresh ones fails the selftest
    lines.clear()
    result = gate_selftest.selftest(b, ["ws"], [0, 1, 2, 3], "regress", tmp_path / "b",
                                    runner=_selftest_runner(effects, "none", fresh_drop=0.3), log=lines.append)
    assert result == (3, 3, False)
    assert any("clean code on fresh seeds 100-103 FAILED the gate" in line for line in lines)
    assert any("clean code on the gate's seeds 0-3 passed the gate" in line for line in lines)
    # fresh seeds must be new to the baseline
    with pytest.raises(HarnessError, match="overlap the gate's seeds"):
        gate_selftest.selftest(b, ["ws"], [0, 1, 2, 3], "regress", tmp_path / "c", runner=_selftest_runner({}, "none"),
                               log=lines.append, fresh_start=2)


def test_lr_fault_is_an_override_of_the_presets_lr():
    assert gate_selftest.FAULTS["lr_tenth"].overrides("regress") == ("train.lr=0.005000000000000001",)
    assert gate_selftest.FAULTS["sampler_gap"].overrides("regress") == ()


def test_sampler_gap_patch_never_yields_the_op_and_is_undone():
    from harness.spaces.nb201 import NB201Space
    from harness.spaces.nb201.arch import CONV3

    space = NB201Space()
    with gate_selftest.FAULTS["sampler_gap"].applied():
        ops = [space.sample(np.random.default_rng(i)).ops for i in range(300)]
    assert all(o[0] != CONV3 for o in ops) and any(o[1] == CONV3 for o in ops)
    assert any(space.sample(np.random.default_rng(i)).ops[0] == CONV3 for i in range(300))


def test_real_same_seed_runs_are_deterministic(env_data, tmp_path):
    assert determinism(["ws"], tmp_path) == []


def test_real_selftest_jobs_run_clean_and_faulted_cells_in_spawned_workers(env_data, tmp_path):
    """run_jobs for real on smoke: a clean ws run and the same cell with a planted fault, each in its own spawned
    process, named as the gate's sweep names them; the fault changes the predictions, the clean run is ws's own."""
    from harness.runs.run import BenchRequest, bench
    from harness.runs.sweep import Cell

    cell = Cell("ws", preset="smoke", seed=0, label="ws")
    results = gate_selftest.run_jobs([(cell, None), (cell, "bn_running")], tmp_path, str(env_data), workers=2, log=lambda _m: None)
    assert [r.state for r in results] == ["complete", "complete"]
    clean, faulty = (pd.read_csv(r.run_dir / "predictions.csv") for r in results)
    assert results[0].run_dir == tmp_path / "clean" / "ws-nb201-smoke-ws-seed0"
    plain = bench(BenchRequest(strategy="ws", preset="smoke", runs_dir=tmp_path / "plain", progress=False))
    assert results[0].kendall_tau == plain["metrics"]["kendall_tau"]
    assert not np.allclose(clean["holdout_loss"], faulty["holdout_loss"])
