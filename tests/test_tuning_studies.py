"""The studies that choose settings read probe architectures of tuning seeds only, and choose by their rule."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ESTIMATORS = ("final-loss-flip", "ema-loss-flip", "final-accuracy", "final-loss")


def _estimator_run(root: Path, seed: int, probe: dict[str, float], scored_tau: float = 0.9) -> Path:
    run = root / f"ws-seed{seed}"
    run.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    truth = np.arange(20.0)
    frame = {"index": np.arange(20), "ground_truth": truth}
    for name in ESTIMATORS:
        frame[f"score_{name}"] = truth + rng.normal(size=20)
    pd.DataFrame(frame).to_csv(run / "predictions.csv", index=False)
    half = {"kendall_tau_half1": 0.5, "kendall_tau_half2": 0.4, "agreement_kendall_tau": 0.7}
    record = {"seed": seed, "strategy": "ws", "preset": "mini", "metrics": {"num_archs": 20},
              "probe_metrics": {"num_archs": 200},
              "estimators": {"estimators": {n: {"kendall_tau": scored_tau} for n in ESTIMATORS},
                             "halves": {"accuracy": half, "loss": half}},
              "probe_estimators": {"estimators": {n: {"kendall_tau": t} for n, t in probe.items()}}}
    (run / "metrics.json").write_text(json.dumps(record))
    return run


def test_the_estimator_choice_keeps_the_incumbent_unless_another_probe_mean_is_higher(tmp_path, capsys):
    study = _script("estimator_study")
    runs = [_estimator_run(tmp_path / "a", 100, {"final-loss-flip": 0.30, "ema-loss-flip": 0.29, "final-accuracy": 0.2, "final-loss": 0.25}),
            _estimator_run(tmp_path / "a", 101, {"final-loss-flip": 0.35, "ema-loss-flip": 0.34, "final-accuracy": 0.1, "final-loss": 0.3})]
    assert study.main([str(r) for r in runs] + ["--csv-prefix", str(tmp_path / "out" / "choice")]) == 0
    said = capsys.readouterr().out
    assert "choice (the incumbent final-loss-flip unless" in said and "): final-loss-flip (probe mean 0.325" in said
    paired = pd.read_csv(tmp_path / "out" / "choice_vs_incumbent.csv").set_index("estimator")
    assert paired.loc["ema-loss-flip", "per seed"] == "-0.010 / -0.010"
    assert list(pd.read_csv(tmp_path / "out" / "choice_probe.csv").columns) == [
        "estimator", "tuning seeds", "probe tau mean", "probe tau seed sd", "seed-seed agreement"]  # no scored-set column
    # a higher mean elsewhere wins, whatever the scored set says
    runs = [_estimator_run(tmp_path / "b", 100, {"final-loss-flip": 0.30, "ema-loss-flip": 0.40, "final-accuracy": 0.2, "final-loss": 0.3}, 0.1),
            _estimator_run(tmp_path / "b", 101, {"final-loss-flip": 0.30, "ema-loss-flip": 0.38, "final-accuracy": 0.2, "final-loss": 0.3}, 0.1)]
    study.main([str(r) for r in runs])
    assert "): ema-loss-flip (probe mean 0.390" in capsys.readouterr().out
    # a higher mean that is not higher on every seed is one seed's noise: the incumbent stays
    runs = [_estimator_run(tmp_path / "c", 100, {"final-loss-flip": 0.30, "ema-loss-flip": 0.25, "final-accuracy": 0.2, "final-loss": 0.3}),
            _estimator_run(tmp_path / "c", 101, {"final-loss-flip": 0.30, "ema-loss-flip": 0.45, "final-accuracy": 0.2, "final-loss": 0.3})]
    study.main([str(r) for r in runs])
    said = capsys.readouterr().out
    assert "): final-loss-flip (probe mean 0.300" in said and "highest other mean ema-loss-flip 0.350" in said


def test_the_estimator_study_refuses_verdict_seeds(tmp_path):
    study = _script("estimator_study")
    run = _estimator_run(tmp_path, 3, {n: 0.3 for n in ESTIMATORS})
    with pytest.raises(SystemExit, match=r"seeds \[3\] are verdict seeds; accepted: runs at tuning seeds >= 100"):
        study.main([str(run)])


def _tuning_run(root: Path, name: str, seed: int, probe_tau: float, train: int = 3590, held: int = 2000, test: int = 0,
                strategy_options: dict | None = None, probe_seed: int = 1, strategy: str = "dinas") -> None:
    run = root / f"{name}-seed{seed}"
    run.mkdir(parents=True)
    record = {"seed": seed, "strategy": strategy, "preset": "mini", "space": "nb201", "estimator": "final-loss-flip",
              "total_steps": train // 64 * 100,
              "data": {"train_images": train, "eval_images": held, "holdout_test_images": test},
              "probe_metrics": {"num_archs": 200, "kendall_tau": probe_tau}}
    config = {"config": {"compute": {"threads": 1}, "data": {"holdout_images": held, "holdout_test": bool(test)},
                         "eval": {"num_archs": 50, "probe_archs": 200, "probe_seed": probe_seed, "split_seed": 0,
                                  "ground_truth": "cifar10_test"},
                         "strategy": {strategy: strategy_options or {}}, "train": {"epochs": 100}}}
    (run / "metrics.json").write_text(json.dumps(record))
    (run / "config.json").write_text(json.dumps(config))


def test_the_tuning_study_pairs_arms_by_seed_on_probes_and_keeps_the_incumbent_unless_beaten_on_every_seed(tmp_path):
    study = _script("tuning_study")
    strict = {"alpha": 0.001, "decay": 0.5}
    for seed, (default, beaten, mixed) in zip((100, 101, 102), ((0.24, 0.31, 0.20), (0.35, 0.42, 0.40), (0.30, 0.36, 0.31))):
        _tuning_run(tmp_path, "default", seed, default)
        _tuning_run(tmp_path, "strict", seed, beaten, strategy_options=strict)
        _tuning_run(tmp_path, "mixed", seed, mixed, strategy_options={"alpha": 1.0})
    arms = [("default", str(tmp_path / "default-seed*")), ("strict", str(tmp_path / "strict-seed*")),
            ("mixed", str(tmp_path / "mixed-seed*"))]
    table, choice = study.study(arms)
    table = table.set_index("arm")
    from harness.scoring.stats import t_interval
    mean, lo, hi = t_interval([0.07, 0.07, 0.06])
    assert table.loc["strict", "minus default, paired [95% t]"] == f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]"
    assert table.loc["strict", "setting"] == "strategy.dinas.alpha=0.001, strategy.dinas.decay=0.5"
    assert table.loc["default", "setting"] == "strategy.dinas.alpha=(preset), strategy.dinas.decay=(preset)"
    assert choice == "strict" and table.loc["mixed", "higher on every seed"] == "no"  # mixed is higher on 2 of 3 seeds only
    # a setting a default may not take is shown, never chosen
    table, choice = study.study(arms, not_candidates=("strict",))
    assert choice == "default" and table.set_index("arm").loc["strict", "higher on every seed"] == "yes (not a candidate)"
    # another strategy's arm shows what it is, not the options of a strategy it does not run
    for seed in (100, 101, 102):
        _tuning_run(tmp_path, "ws", seed, 0.3, strategy="ws")
    table, _choice = study.study(arms + [("ws", str(tmp_path / "ws-seed*"))], not_candidates=("ws",))
    assert table.set_index("arm").loc["ws", "setting"] == "strategy=ws"


def test_the_tuning_study_refuses_verdict_seeds_mixed_arms_and_other_probe_sets(tmp_path):
    study = _script("tuning_study")
    _tuning_run(tmp_path, "default", 100, 0.3)
    _tuning_run(tmp_path, "verdict", 0, 0.3)
    with pytest.raises(SystemExit, match="verdict seed 0; accepted: tuning seeds >= 100"):
        study.study([("default", str(tmp_path / "default-seed*")), ("v", str(tmp_path / "verdict-seed*"))])
    with pytest.raises(SystemExit, match="no finished run matches"):
        study.study([("none", str(tmp_path / "absent-*"))])
    _tuning_run(tmp_path, "mix", 100, 0.3)
    _tuning_run(tmp_path, "mix", 101, 0.3, strategy_options={"alpha": 1.0})
    with pytest.raises(SystemExit, match=r"arm 'mix' mixes settings \(strategy.dinas.alpha"):
        study.study([("mix", str(tmp_path / "mix-seed*"))])
    _tuning_run(tmp_path, "otherprobes", 100, 0.3, probe_seed=7)
    with pytest.raises(SystemExit, match="differ in their probe set"):
        study.study([("default", str(tmp_path / "default-seed*")), ("o", str(tmp_path / "otherprobes-seed*"))])


def test_the_rule_keeps_the_incumbent_unless_a_candidate_is_higher_on_every_shared_seed():
    from harness.errors import HarnessError
    from harness.scoring.tuning import choose

    taus = {"inc": {100: 0.20, 101: 0.30}, "a": {100: 0.25, 101: 0.29}, "b": {100: 0.21, 101: 0.31},
            "c": {100: 0.40, 101: 0.50}, "d": {102: 0.90}}
    # a is higher on one seed only; d shares no seed with the incumbent; b and c are higher on both: c has the higher mean
    assert choose("inc", taus) == ("c", ["b", "c"])
    assert choose("inc", taus, not_candidates=["c"]) == ("b", ["b", "c"])
    assert choose("inc", {k: taus[k] for k in ("inc", "a", "d")}) == ("inc", [])
    with pytest.raises(HarnessError, match="incumbent 'x'"):
        choose("x", taus)
