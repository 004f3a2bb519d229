"""The CI ranking-regression gate: K seeds of each gated strategy, mean tau against a recorded baseline mean.

Why a mean over seeds: supernet training is chaotic, so any change of summation or random-number order
moves one seed's tau by about the seed-to-seed sd (~0.08 on mini), and a single-seed gate must either
fail on every harmless reordering (tolerance 0) or miss real regressions (tolerance ~2 sd). Averaging K
seeds shrinks that noise by sqrt(K), and the tolerance is derived from the sd the baseline measured:

    fail if  baseline_mean - mean_now  >  z_{1-a} * sd_base * sqrt(1/K_now + 1/K_base)
                                        (= z_{0.95} * sqrt(2) * sd / sqrt(K) with K seeds on both sides)

which is a one-sided false-alarm rate a (5%) per strategy if seed taus are independent and normal with
the same sd before and after the change, and the baseline's measured sd is taken as the true one (with
K = 4 that sd is itself uncertain by about +-40%: the gate is calibrated, not exact).

Three further checks, none of them statistical:
* a failed run, a strategy without a baseline, a baseline strategy not run, or a baseline of another
  preset fails;
* two gated strategies giving identical predictions on the same seed fail: what distinguishes them is
  inert (e.g. a projection that no longer projects), whatever their tau;
* determinism: the same seed run twice (on the fast smoke preset) must give byte-identical predictions.csv.
Re-baselining (`make rebaseline`) is a deliberate, reviewed act.
"""
from __future__ import annotations

import datetime as dt
import itertools
import math
import platform
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from harness.scoring import stats
from harness.runs.envinfo import git_state
from harness.errors import HarnessError
from harness.runs.fileio import read_json, write_json
from harness.registry import STRATEGIES
from harness.runs.sweep import Cell, CellResult, run_cells

BASELINE_FILE = Path("results/baselines/regress.json")
FORMAT = 2
PRESET = "regress"
SEEDS = 4
FALSE_ALARM = 0.05
DETERMINISM_PRESET = "smoke"
DETERMINISM_SEED = 0
# Always gated, and gated as soon as they are registered (a strategy module that registers itself is enough).
REQUIRED = ("ws",)
OPTIONAL = ("dinas",)
REBASELINE = "make rebaseline"

Runner = Callable[..., list[CellResult]]


@dataclass
class Outcome:
    strategy: str
    seed: int
    tau: float | None
    wall_seconds: float | None = None
    error: str | None = None
    run_dir: str | None = None


@dataclass
class StrategyBaseline:
    seeds: list[int]
    taus: list[float]
    mean: float
    sd: float
    wall_seconds: list[float | None] = field(default_factory=list)


@dataclass
class Baseline:
    preset: str
    strategies: dict[str, StrategyBaseline]
    false_alarm: float = FALSE_ALARM
    commit: str | None = None
    platform: str = ""
    recorded_at: str | None = None


def platform_key(device: str = "cpu") -> str:
    """What decides the floating-point results of a run: machine, CPU kernel set, torch build, device kind."""
    from harness.runs.identity import device_kind

    return f"{platform.machine()} {torch.backends.cpu.get_cpu_capability()} torch {torch.__version__} {device_kind(torch.device(device))}"


def fixed_set() -> list[str]:
    names = STRATEGIES.names()
    missing = [s for s in REQUIRED if s not in names]
    if missing:
        raise HarnessError(f"regression set needs strategies {missing}, which are not registered")
    return [*REQUIRED, *(s for s in OPTIONAL if s in names)]


def seed_list(k: int) -> list[int]:
    if k < 2:
        raise HarnessError(f"--seeds {k}: the gate needs >= 2 seeds (it measures their spread)")
    return list(range(k))


def cells(strategies: Sequence[str], seeds: Sequence[int], preset: str, overrides: Sequence[str] = ()) -> list[Cell]:
    return [Cell(s, preset=preset, seed=seed, overrides=tuple(overrides), label=s) for s in strategies for seed in seeds]


def outcome(result: CellResult) -> Outcome:
    cell = result.cell
    wall = None
    metrics = Path(result.run_dir) / "metrics.json"
    if result.state == "complete" and metrics.is_file():
        wall = read_json(metrics).get("wall_seconds")
    error = result.error if result.state != "complete" else None
    if result.state != "complete" and error is None:
        error = f"run {result.state}"
    return Outcome(cell.strategy, cell.seed, result.kendall_tau, wall, error, str(result.run_dir))


def run_set(strategies: Sequence[str], seeds: Sequence[int], runs_dir: Path, preset: str = PRESET,
            data_dir: str | None = None, runner: Runner | None = None, address: str | None = None) -> list[Outcome]:
    """Every (strategy, seed) through the sweep, one CPU (and, by the preset, one thread) each."""
    results = (runner or run_cells)(cells(strategies, seeds, preset), Path(runs_dir), address=address, cpus_per_run=1.0,
                     progress=True, data_dir=data_dir)
    return [outcome(r) for r in results]


# ---- the statistical check -------------------------------------------------------------------------------
def tolerance(base: StrategyBaseline, k_now: int, false_alarm: float = FALSE_ALARM) -> float:
    return stats.mean_drop_tolerance(base.sd, k_now, len(base.taus), false_alarm)


def check(baseline: Baseline, outcomes: Sequence[Outcome], preset: str = PRESET) -> tuple[list[str], list[str]]:
    """(failures, notes): one line per failure naming strategy, means, tolerance and the re-baseline command."""
    failures, notes = [], []
    if baseline.preset != preset:
        return [f"baseline was recorded on preset {baseline.preset}, this gate ran {preset}; `{REBASELINE}`"], notes
    by_strategy: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_strategy.setdefault(o.strategy, []).append(o)
    for name, runs in by_strategy.items():
        bad = [o for o in runs if o.error is not None or o.tau is None or math.isnan(o.tau)]
        if bad:
            reasons = "; ".join(f"seed {o.seed}: {o.error or 'tau undefined'}" for o in bad)
            failures.append(f"{name}: {len(bad)} of {len(runs)} run(s) failed ({reasons})")
            continue
        base = baseline.strategies.get(name)
        taus = [o.tau for o in runs]
        if base is None:
            failures.append(f"{name}: no baseline recorded (mean tau now {np.mean(taus):.4f}); record one with `{REBASELINE}`")
            continue
        mean = float(np.mean(taus))
        tol = tolerance(base, len(taus), baseline.false_alarm)
        drop = base.mean - mean
        seeds = ",".join(str(o.seed) for o in runs)
        what = (f"mean tau over seeds {seeds} {mean:.4f} vs baseline {base.mean:.4f} (seeds {len(base.taus)}, sd {base.sd:.4f}): "
                f"drop {drop:+.4f}, allowed {tol:.4f}")
        if drop > tol:
            failures.append(f"{name}: {what}; if intended, re-baseline with `{REBASELINE}`")
        else:
            notes.append(f"{name}: {what} ok")
    for name in sorted(set(baseline.strategies) - set(by_strategy)):
        failures.append(f"{name}: in the baseline but not run (not registered any more?); if intended, `{REBASELINE}`")
    return failures, notes


def _estimates(run_dir: str | None) -> np.ndarray | None:
    path = Path(run_dir or "") / "predictions.csv"
    return pd.read_csv(path)["estimate"].to_numpy() if path.is_file() else None


def identical_strategies(outcomes: Sequence[Outcome]) -> list[str]:
    """Failures for pairs of strategies whose predictions are identical on a seed: their difference is inert."""
    failures = []
    seeds = sorted({o.seed for o in outcomes})
    for seed in seeds:
        mine = [o for o in outcomes if o.seed == seed and o.error is None]
        for a, b in itertools.combinations(mine, 2):
            ea, eb = _estimates(a.run_dir), _estimates(b.run_dir)
            if ea is not None and eb is not None and ea.shape == eb.shape and np.array_equal(ea, eb):
                failures.append(f"{a.strategy} and {b.strategy} give identical predictions on seed {seed}: "
                                f"whatever distinguishes them had no effect")
    return failures


def determinism(strategies: Sequence[str], runs_dir: Path, preset: str = DETERMINISM_PRESET, seed: int = DETERMINISM_SEED,
                data_dir: str | None = None, runner: Runner | None = None, address: str | None = None) -> list[str]:
    """Failures unless each strategy, run twice with one seed into two directories, writes byte-identical predictions."""
    runner = runner or run_cells
    grid = cells(strategies, [seed], preset)
    first = runner(grid, Path(runs_dir) / "first", address=address, progress=False, data_dir=data_dir)
    second = runner(grid, Path(runs_dir) / "second", address=address, progress=False, data_dir=data_dir)
    failures = []
    for a, b in zip(first, second):
        name = a.cell.strategy
        if a.state != "complete" or b.state != "complete":
            failures.append(f"determinism: {name} ({preset}, seed {seed}) did not complete: {a.error or b.error}")
            continue
        pa, pb = Path(a.run_dir) / "predictions.csv", Path(b.run_dir) / "predictions.csv"
        if pa.read_bytes() != pb.read_bytes():
            failures.append(f"determinism: {name} ({preset}, seed {seed}) run twice gave different predictions "
                            f"({pa} vs {pb}): something depends on more than the seed")
    return failures


# ---- the baseline ----------------------------------------------------------------------------------------
def load_baseline(path: Path = BASELINE_FILE) -> Baseline | None:
    if not Path(path).is_file():
        return None
    try:
        raw = read_json(path)
        if raw.get("format") != FORMAT:
            raise HarnessError(f"regression baseline {path} is in an older format (one seed per strategy, no sd); "
                               f"record a {SEEDS}-seed one with `{REBASELINE}`")
        strategies = {name: StrategyBaseline(**entry) for name, entry in raw["strategies"].items()}
        return Baseline(raw["preset"], strategies, raw.get("false_alarm", FALSE_ALARM), raw.get("commit"),
                        raw.get("platform", ""), raw.get("recorded_at"))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HarnessError(f"corrupt regression baseline {path}: {exc}; recreate it with `{REBASELINE}`") from None


def record(outcomes: Sequence[Outcome], path: Path = BASELINE_FILE, preset: str = PRESET,
           false_alarm: float = FALSE_ALARM) -> Baseline:
    bad = [o for o in outcomes if o.error is not None or o.tau is None or math.isnan(o.tau)]
    if bad:
        raise HarnessError("cannot re-baseline: " + ", ".join(f"{o.strategy} seed {o.seed} ({o.error or 'no tau'})" for o in bad))
    stats.one_sided_z(false_alarm)  # validates the rate
    strategies = {}
    for name in dict.fromkeys(o.strategy for o in outcomes):
        runs = sorted((o for o in outcomes if o.strategy == name), key=lambda o: o.seed)
        if len(runs) < 2:
            raise HarnessError(f"cannot re-baseline {name} from {len(runs)} seed: the gate needs the seed sd (>= 2 seeds)")
        taus = [float(o.tau) for o in runs]
        strategies[name] = StrategyBaseline([o.seed for o in runs], taus, float(np.mean(taus)), float(np.std(taus, ddof=1)),
                                            [o.wall_seconds for o in runs])
    baseline = Baseline(preset, strategies, false_alarm, git_state().get("commit"), platform_key(),
                        dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    write_json(path, {
        "about": "Kendall tau per seed of the CI regression set; `make regress` fails when a strategy's mean drops by more "
                 "than z_{1-false_alarm} * sd * sqrt(1/K_now + 1/K_base). Rewritten only by `make rebaseline`.",
        "format": FORMAT,
        **{k: v for k, v in asdict(baseline).items() if k != "strategies"},
        "strategies": {name: asdict(s) for name, s in strategies.items()},
    })
    return baseline


def smallest_caught_drops(baseline: Baseline, k_now: int) -> dict[str, float]:
    """Per strategy: the mean tau drop just beyond which the gate fails."""
    return {name: tolerance(s, k_now, baseline.false_alarm) for name, s in baseline.strategies.items()}


def fresh_runs_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="harness-regress-")
