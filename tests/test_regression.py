"""The CI gate: fails on a lowered tau with a useful line, passes on an equal one, re-baselines on request."""
from __future__ import annotations

import json

import pytest

from harness import regression
from harness.cli import main
from harness.errors import HarnessError
from harness.regression import Entry, Outcome, compare, load_baseline, record, run_set


def baseline(tau: float = 0.40, tolerance: float = 0.0, platform: str | None = None, cross: float = 0.15) -> dict[str, Entry]:
    return {"ws": Entry(strategy="ws", preset="regress", seed=0, tau=tau, tolerance=tolerance, commit="abcdef0123456789",
                        threads=1, platform=regression.platform_key() if platform is None else platform,
                        cross_platform_tolerance=cross, wall_seconds=90.0, recorded_at="2026-01-01T00:00:00+00:00")}


def test_equal_tau_passes():
    failures, notes = compare(baseline(), [Outcome("ws", 0.40, 60.0)])
    assert failures == [] and "ok" in notes[0]


def test_on_the_recorded_platform_any_drop_fails_with_one_line():
    assert compare(baseline(tolerance=0.02), [Outcome("ws", 0.385, 60.0)])[0] == []
    failures, _ = compare(baseline(), [Outcome("ws", 0.35, 60.0)])
    assert len(failures) == 1
    line = failures[0]
    assert "\n" not in line
    assert line.startswith("ws:") and "0.4000" in line and "0.3500" in line and "make rebaseline" in line
    assert "abcdef0123" in line


def test_another_platform_or_thread_count_allows_the_cross_platform_drop():
    elsewhere = baseline(platform="riscv64 NONE torch 0.0")
    failures, notes = compare(elsewhere, [Outcome("ws", 0.30, 60.0)])
    assert failures == [] and "bit-equality is not expected" in notes[0]
    failures, _ = compare(elsewhere, [Outcome("ws", 0.20, 60.0)])
    assert "tolerance 0.15" in failures[0]
    failures, notes = compare(baseline(), [Outcome("ws", 0.30, 60.0)], threads=2)
    assert failures == [] and "with 2" in notes[0]


def test_rise_passes_with_a_note_to_rebaseline():
    failures, notes = compare(baseline(), [Outcome("ws", 0.50, 60.0)])
    assert failures == [] and "make rebaseline" in notes[0]


def test_missing_baseline_entry_failed_run_and_orphaned_entry_fail():
    failures, _ = compare(baseline(), [Outcome("ws", 0.40, 1.0), Outcome("dinas", 0.5, 1.0)])
    assert len(failures) == 1 and failures[0].startswith("dinas: no baseline")
    failures, _ = compare(baseline(), [Outcome("ws", None, 1.0, "training diverged")])
    assert "training diverged" in failures[0] and "0.4000" in failures[0]
    failures, _ = compare(baseline(), [])
    assert failures[0].startswith("ws: in the baseline but not run")


def test_baseline_of_another_preset_does_not_pass_silently():
    failures, _ = compare(baseline(), [Outcome("ws", 0.40, 1.0)], preset="mini")
    assert "preset regress" in failures[0]


def test_record_and_load_round_trip(tmp_path):
    path = tmp_path / "regress.json"
    record([Outcome("ws", 0.4321, 55.0)], path, tolerance=0.01)
    loaded = load_baseline(path)
    entry = loaded["ws"]
    assert (entry.strategy, entry.preset, entry.seed, entry.tau, entry.tolerance, entry.threads) == ("ws", "regress", 0, 0.4321, 0.01, 1)
    assert entry.platform == regression.platform_key() and entry.cross_platform_tolerance == regression.DEFAULT_CROSS_PLATFORM_TOLERANCE
    assert entry.recorded_at and json.loads(path.read_text())["entries"][0]["commit"] == entry.commit
    with pytest.raises(HarnessError, match="cannot re-baseline: ws"):
        record([Outcome("ws", None, 1.0, "boom")], path)
    path.write_text("{}")
    with pytest.raises(HarnessError, match="corrupt regression baseline"):
        load_baseline(path)


def test_fixed_set_includes_dinas_only_when_registered(monkeypatch):
    monkeypatch.setattr(regression.STRATEGIES, "names", lambda: ["params", "ws"])
    assert regression.fixed_set() == ["ws"]
    monkeypatch.setattr(regression.STRATEGIES, "names", lambda: ["dinas", "ws"])
    assert regression.fixed_set() == ["ws", "dinas"]


def _fake_bench(taus):
    def run(req):
        return {"metrics": {"kendall_tau": taus[req.strategy]}}
    return run


def test_cli_gate_fails_on_lowered_tau_and_passes_on_equal(tmp_path, monkeypatch, capsys):
    path = tmp_path / "regress.json"
    monkeypatch.setattr(regression, "bench", _fake_bench({"ws": 0.40}))
    assert main(["rebaseline", "--baseline", str(path), "--strategies", "ws"]) == 0
    assert main(["regress", "--baseline", str(path), "--strategies", "ws"]) == 0
    monkeypatch.setattr(regression, "bench", _fake_bench({"ws": 0.30}))
    capsys.readouterr()
    assert main(["regress", "--baseline", str(path), "--strategies", "ws"]) == 1
    err = capsys.readouterr().err
    assert "REGRESSION ws: Kendall tau fell from 0.4000 to 0.3000" in err and "make rebaseline" in err


def test_cli_without_baseline_says_how_to_make_one(tmp_path, capsys):
    assert main(["regress", "--baseline", str(tmp_path / "none.json"), "--strategies", "ws"]) == 1
    assert "make rebaseline" in capsys.readouterr().err


def test_real_same_seed_runs_reproduce_tau_exactly(env_data, tmp_path):
    """The premise of comparing equal seeds: two smoke runs of ws with seed 0 give the same tau."""
    first = run_set(["ws"], tmp_path / "a", preset="smoke", log=lambda _m: None)
    second = run_set(["ws"], tmp_path / "b", preset="smoke", log=lambda _m: None)
    assert first[0].error is None and first[0].tau == second[0].tau
    entries = record(first, tmp_path / "b.json", preset="smoke", tolerance=0.0)
    failures, _ = compare(entries, second, preset="smoke")
    assert failures == []
