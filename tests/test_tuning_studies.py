"""The studies settings are chosen by read probe architectures of tuning seeds only, and choose by their rule."""
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


def _images_run(root: Path, name: str, seed: int, probe_tau: float, train: int, held: int, test: int) -> None:
    run = root / f"{name}-seed{seed}"
    run.mkdir(parents=True)
    record = {"seed": seed, "strategy": "ws", "preset": "mini", "estimator": "final-loss-flip", "total_steps": train // 64 * 100,
              "data": {"train_images": train, "eval_images": held, "holdout_test_images": test},
              "probe_metrics": {"num_archs": 200, "kendall_tau": probe_tau}}
    (run / "metrics.json").write_text(json.dumps(record))


def test_the_estimation_images_study_pairs_arms_by_seed_on_probes(tmp_path):
    study = _script("estimation_images_study")
    for seed, (new, old) in zip((100, 101, 102), ((0.24, 0.31), (0.35, 0.42), (0.30, 0.36))):
        _images_run(tmp_path, "new", seed, new, 3590, 2000, 0)
        _images_run(tmp_path, "old", seed, old, 4590, 2017, 1017)
    table = study.study([("new", str(tmp_path / "new-seed*")), ("old", str(tmp_path / "old-seed*"))]).set_index("arm")
    diffs = [0.07, 0.07, 0.06]
    from harness.scoring.stats import t_interval
    mean, lo, hi = t_interval(diffs)
    assert table.loc["old", "minus new, paired [95% t]"] == f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]"
    assert table.loc["old", "of them official test images"] == 1017 and table.loc["new", "training images"] == 3590
    _images_run(tmp_path, "verdict", 0, 0.3, 3590, 2000, 0)
    with pytest.raises(SystemExit, match="verdict seed 0; accepted: tuning seeds >= 100"):
        study.study([("new", str(tmp_path / "new-seed*")), ("v", str(tmp_path / "verdict-seed*"))])
    with pytest.raises(SystemExit, match="no finished run matches"):
        study.study([("none", str(tmp_path / "absent-*"))])
