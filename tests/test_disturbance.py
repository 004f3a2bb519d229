import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from harness.config import EvalConfig
from harness.errors import HarnessError
from harness.features.disturbance import (
    event_steps,
    make,
    pd_table,
    rank_disturbance,
    snapshot_steps,
    summarize_pd,
)
from harness.registry import SPACES


def test_pd_of_a_hand_made_sequence():
    events = pd.DataFrame([
        # event 0: 50% right after its own update, then 48% one update later, 45% ten updates later
        {"event": 0, "probe": 0, "arch": "a", "trained_step": 5, "lag": 0, "acc": 50.0},
        {"event": 0, "probe": 0, "arch": "a", "trained_step": 5, "lag": 1, "acc": 48.0},
        {"event": 0, "probe": 0, "arch": "a", "trained_step": 5, "lag": 10, "acc": 45.0},
        # event 1 gains from later updates at t=1 (negative PD)
        {"event": 1, "probe": 1, "arch": "b", "trained_step": 9, "lag": 0, "acc": 60.0},
        {"event": 1, "probe": 1, "arch": "b", "trained_step": 9, "lag": 1, "acc": 61.0},
        {"event": 1, "probe": 1, "arch": "b", "trained_step": 9, "lag": 10, "acc": 55.0},
    ])
    table = pd_table(events)
    assert table[["event", "lag", "pd"]].values.tolist() == [[0, 1, 2.0], [0, 10, 5.0], [1, 1, -1.0], [1, 10, 5.0]]
    summary = summarize_pd(table)
    assert summary[1]["mean"] == pytest.approx(0.5)
    assert summary[1]["mean_abs"] == pytest.approx(1.5)
    assert summary[10]["mean"] == pytest.approx(5.0) and summary[10]["std"] == pytest.approx(0.0)
    assert summary[1]["n"] == summary[10]["n"] == 2


def test_rank_disturbance_of_hand_made_snapshots():
    truth = {"a": 1.0, "b": 2.0, "c": 3.0}
    snaps = pd.DataFrame([
        {"step": 10, "arch": "a", "acc": 3.0}, {"step": 10, "arch": "b", "acc": 2.0}, {"step": 10, "arch": "c", "acc": 1.0},
        {"step": 20, "arch": "a", "acc": 1.0}, {"step": 20, "arch": "b", "acc": 2.0}, {"step": 20, "arch": "c", "acc": 3.0},
    ])
    ranks = rank_disturbance(snaps, truth)
    assert ranks["step"].tolist() == [10, 20]
    assert np.isnan(ranks["tau_previous"][0]) and ranks["tau_previous"][1] == pytest.approx(-1.0)
    assert ranks["tau_truth"].tolist() == pytest.approx([-1.0, 1.0])


def test_schedules():
    steps = event_steps(total=1000, events=10, first_fraction=0.1, max_lag=100)
    assert len(steps) == 10 and steps[0] == 100 and steps[-1] == 899  # the longest lag still fits
    assert event_steps(total=8, events=4, first_fraction=0.0, max_lag=100) == [1, 3, 5, 7]
    assert snapshot_steps(100, 4) == [25, 50, 75, 100]


class ScriptedStrategy:
    """Accuracy of a probe = 50 + 10 * (times it was trained) - 0.5 * (updates since it was last trained)."""

    name = "scripted"
    supports_forced_arch = True

    def __init__(self):
        self.step = 0
        self.trained: dict[str, list[int]] = {}

    def train(self, arch):
        if arch is not None:
            self.trained.setdefault(str(arch), []).append(self.step)
        self.step += 1

    def estimate(self, archs):
        acc = []
        for arch in archs:
            seen = self.trained.get(str(arch), [])
            acc.append(50.0 + 10 * len(seen) - 0.5 * (self.step - 1 - seen[-1]) if seen else 10.0)
        return {"score": np.array(acc), "holdout_acc": np.array(acc)}


def _probe(ground_truth, total=60, **options):
    space = SPACES.get("nb201")()
    ctx = SimpleNamespace(space=space, total_steps=total)
    opts = {"enabled": True, "num_probes": 4, "events": 5, "lags": [1, 2, 4], "snapshots": 3, "first_fraction": 0.0, **options}
    return make(opts, ctx, ground_truth=ground_truth, eval_config=EvalConfig(num_archs=50, bootstrap=10))


def test_probe_measures_the_scripted_disturbance(ground_truth, tmp_path):
    probe = _probe(ground_truth)
    strategy = ScriptedStrategy()
    for step in range(60):
        strategy.train(probe.forced_arch(step))
        probe.after_step(step + 1, strategy)
    table, snapshots, ranks, summary = probe.results()
    # The script loses 0.5 points per later update whatever a probe's history, so every event's PD is 0.5 * t.
    assert sorted(table["lag"].unique().tolist()) == [1, 2, 4]
    for lag in (1, 2, 4):
        assert table.loc[table["lag"] == lag, "pd"].tolist() == pytest.approx([0.5 * lag] * 5)
    assert summary["mean_pd_at"]["1"] == pytest.approx(0.5)
    assert len(snapshots) == 3 * 4 and ranks["step"].tolist() == [20, 40, 60]
    # The probes are outside the scored set of the eval config.
    from harness.scoring.archsets import scored_archs
    scored = {str(a) for a in scored_archs(SPACES.get("nb201")(), ground_truth, 50, 0)}
    assert not scored & set(summary["probes"])
    probe.finish(tmp_path)
    saved = json.loads((tmp_path / "disturbance.json").read_text())
    assert saved["pd_by_lag"]["4"]["mean"] == pytest.approx(2.0)
    assert (tmp_path / "disturbance.png").exists() and (tmp_path / "disturbance.pdf").exists()
    assert pd.read_csv(tmp_path / "disturbance_pd.csv")["t"].tolist() == [1, 2, 4]


def test_probe_state_survives_a_resume(ground_truth):
    first, strategy = _probe(ground_truth), ScriptedStrategy()
    for step in range(30):
        strategy.train(first.forced_arch(step))
        first.after_step(step + 1, strategy)
    second = _probe(ground_truth)
    second.load_state_dict(first.state_dict())
    for step in range(30, 60):
        strategy.train(second.forced_arch(step))
        second.after_step(step + 1, strategy)
    assert len(pd_table(pd.DataFrame(second.event_rows))) == 15


def test_strategy_without_forced_architectures_is_refused(ground_truth):
    probe = _probe(ground_truth)
    strategy = ScriptedStrategy()
    strategy.supports_forced_arch = False
    with pytest.raises(HarnessError, match="cannot"):
        probe.after_step(1, strategy)


@pytest.mark.parametrize("bad, fragment", [
    ({"lags": [0, 10]}, "lags"), ({"num_probes": 1}, "num_probes"), ({"first_fraction": 1.5}, "first_fraction"),
    ({"colour": 3}, "colour"),
])
def test_bad_options_give_one_line(ground_truth, bad, fragment):
    with pytest.raises(HarnessError) as err:
        _probe(ground_truth, **bad)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_disturbance_preset_is_mini_plus_the_probe():
    from harness.config import resolve

    mini, probe = resolve("mini"), resolve("disturbance")
    for section in ("shape", "data", "train", "eval"):
        assert getattr(probe, section) == getattr(mini, section), f"[{section}] of disturbance.toml drifted from mini.toml"
    assert probe.features["disturbance"]["enabled"] is True and not mini.features.get("disturbance", {}).get("enabled", False)
