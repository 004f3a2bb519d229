"""The CI ranking-regression gate: K seeds of each gated strategy, mean tau against a recorded baseline mean.

Why a mean over seeds: supernet training is chaotic, so any change of summation or random-number order
moves one seed's tau by about the seed-to-seed sd (~0.06 on regress), and a single-seed gate must either
fail on every harmless reordering (tolerance 0) or miss real regressions (tolerance ~2 sd). Averaging K
seeds shrinks that noise by sqrt(K), and the tolerance is derived from the sd the baseline measured:

    fail if  baseline_mean - mean_now  >  t_{1-a, df} * sd * sqrt(1/K_now + 1/K_base)

sd is the baseline's seed sd pooled over the gated strategies (sqrt of sum (n_i - 1) s_i^2 / sum (n_i - 1),
df = sum (n_i - 1): 6 with two strategies of 4 seeds), which assumes they share one true seed sd -- on
regress they measured 0.060 and 0.064, and the baseline records a Bartlett test of that assumption; a
baseline with pool_sd false uses each strategy's own sd and n - 1 df. Because the sd is itself estimated,
the quantile is Student's t with the sd's degrees of freedom, not z: with independent, normal seed taus of
one true sd, (drop) / (sd * sqrt(1/K_now + 1/K_base)) is exactly t with df degrees of freedom, so the
one-sided false-alarm rate per strategy is exactly a (5%). (z_{0.95} with a 4-seed sd gave 9.9%.)
Over m gated strategies the whole gate false-alarms with probability at most 1 - (1 - a)^m (0.0975 for
two): exact for independent strategies, lower when a shared sd makes their tests positively dependent.

Which seeds: the sd * sqrt(1/K_now + 1/K_base) standard error is that of *fresh* seeds, independent of the
baseline's. When the gate reruns the baseline's own seeds, unchanged deterministic code reproduces every
tau and drops by exactly 0 (it can never false-alarm), and a change that alters the arithmetic redraws
each seed's tau (chaotic training), so the fresh-seed rate a is the rate for such changes.

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
    pool_sd: bool = True


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
def seed_scale(baseline: Baseline, name: str) -> tuple[float, int, str]:
    """(sd, its degrees of freedom, how it was obtained) behind strategy `name`'s tolerance: the baseline's seed
    sd pooled over its strategies (when pool_sd and more than one strategy), else the strategy's own."""
    if baseline.pool_sd and len(baseline.strategies) > 1:
        sd, df = stats.pooled_sd([s.taus for s in baseline.strategies.values()])
        return sd, df, f"pooled over {', '.join(baseline.strategies)}, {df} df"
    own = baseline.strategies[name]
    return own.sd, len(own.taus) - 1, f"{name}'s own, {len(own.taus) - 1} df"


def tolerance(baseline: Baseline, name: str, k_now: int) -> float:
    """The largest mean drop of strategy `name` over k_now fresh seeds that is still noise at the baseline's
    one-sided false-alarm rate: t_{1-a, df} * sd * sqrt(1/k_now + 1/K_base)."""
    sd, df, _how = seed_scale(baseline, name)
    return stats.mean_drop_tolerance(sd, df, k_now, len(baseline.strategies[name].taus), baseline.false_alarm)


def mean_drop(baseline: Baseline, name: str, taus: Sequence[float]) -> tuple[float, float, float]:
    """(mean tau now, its drop below strategy `name`'s baseline mean, the drop allowed at len(taus) seeds)."""
    mean = float(np.mean(taus))
    return mean, baseline.strategies[name].mean - mean, tolerance(baseline, name, len(taus))


def equal_sd_p(baseline: Baseline) -> float:
    """Bartlett's test p of "the gated strategies share one true seed sd" (what pooling assumes); nan with
    fewer than two strategies."""
    samples = [s.taus for s in baseline.strategies.values() if len(s.taus) >= 2]
    if len(samples) < 2 or any(np.std(x) == 0 for x in samples):
        return math.nan
    from scipy import stats as sps
    return float(sps.bartlett(*samples).pvalue)


def seed_relation(base_seeds: Sequence[int], seeds_now: Sequence[int]) -> str:
    """How the gate's seeds relate to the baseline's, and so what its false-alarm rate means."""
    now, base = set(seeds_now), set(base_seeds)
    if not now & base:
        return "fresh seeds (none of the baseline's): the stated false-alarm rate applies"
    if now == base:
        return ("the baseline's own seeds: unchanged deterministic code drops by exactly 0 (no false alarm); "
                "a change that alters the arithmetic redraws each seed's tau, and the stated rate applies")
    return (f"seeds {sorted(now & base)} shared with the baseline: unchanged code reproduces those taus, so the "
            "false-alarm rate is at most the stated one")


def false_alarm_rates(baseline: Baseline, m: int) -> str:
    """The per-strategy and whole-gate false-alarm rates, said once per gate run."""
    a = baseline.false_alarm
    pooled = baseline.pool_sd and len(baseline.strategies) > 1
    line = (f"false-alarm rate {a:.3f} per strategy (one-sided t with the sd's degrees of freedom; exact for "
            f"independent normal seed taus); whole gate over {m} strateg{'y' if m == 1 else 'ies'}: at most "
            f"{stats.whole_gate_false_alarm(a, m):.4f} = 1 - (1 - {a:g})^{m} (exact for independent strategies")
    if pooled:
        line += f"; their tests share the pooled sd, which can only lower it; Bartlett p of equal sds {equal_sd_p(baseline):.2f})"
    else:
        line += ")"
    return line


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
        mean, drop, tol = mean_drop(baseline, name, taus)
        sd, _df, how = seed_scale(baseline, name)
        seeds = ",".join(str(o.seed) for o in runs)
        what = (f"mean tau over seeds {seeds} {mean:.4f} vs baseline {base.mean:.4f} (seeds {len(base.taus)}, sd {sd:.4f} {how}): "
                f"drop {drop:+.4f}, allowed {tol:.4f} [{seed_relation(base.seeds, [o.seed for o in runs])}]")
        if drop > tol:
            failures.append(f"{name}: {what}; if intended, re-baseline with `{REBASELINE}`")
        else:
            notes.append(f"{name}: {what} ok")
    for name in sorted(set(baseline.strategies) - set(by_strategy)):
        failures.append(f"{name}: in the baseline but not run (not registered any more?); if intended, `{REBASELINE}`")
    if by_strategy:
        notes.append(false_alarm_rates(baseline, len(by_strategy)))
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
                        raw.get("platform", ""), raw.get("recorded_at"), bool(raw.get("pool_sd", True)))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HarnessError(f"corrupt regression baseline {path}: {exc}; recreate it with `{REBASELINE}`") from None


def record(outcomes: Sequence[Outcome], path: Path = BASELINE_FILE, preset: str = PRESET,
           false_alarm: float = FALSE_ALARM, pool_sd: bool = True) -> Baseline:
    bad = [o for o in outcomes if o.error is not None or o.tau is None or math.isnan(o.tau)]
    if bad:
        raise HarnessError("cannot re-baseline: " + ", ".join(f"{o.strategy} seed {o.seed} ({o.error or 'no tau'})" for o in bad))
    stats.one_sided_t(false_alarm, 1)  # validates the rate
    strategies = {}
    for name in dict.fromkeys(o.strategy for o in outcomes):
        runs = sorted((o for o in outcomes if o.strategy == name), key=lambda o: o.seed)
        if len(runs) < 2:
            raise HarnessError(f"cannot re-baseline {name} from {len(runs)} seed: the gate needs the seed sd (>= 2 seeds)")
        taus = [float(o.tau) for o in runs]
        strategies[name] = StrategyBaseline([o.seed for o in runs], taus, float(np.mean(taus)), float(np.std(taus, ddof=1)),
                                            [o.wall_seconds for o in runs])
    baseline = Baseline(preset, strategies, false_alarm, git_state().get("commit"), platform_key(),
                        dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), pool_sd)
    write_json(path, {
        "about": "Kendall tau per seed of the CI regression set; `make regress` fails when a strategy's mean drops by more "
                 "than t_{1-false_alarm, df} * sd * sqrt(1/K_now + 1/K_base), sd pooled over the strategies when pool_sd "
                 "(df = sum of n_i - 1), else each strategy's own (df = n - 1). Rewritten only by `make rebaseline`.",
        "format": FORMAT,
        **{k: v for k, v in asdict(baseline).items() if k != "strategies"},
        "strategies": {name: asdict(s) for name, s in strategies.items()},
    })
    return baseline


def smallest_caught_drops(baseline: Baseline, k_now: int) -> dict[str, float]:
    """Per strategy: the mean tau drop just beyond which the gate fails."""
    return {name: tolerance(baseline, name, k_now) for name in baseline.strategies}


def drops_caught_with_power(baseline: Baseline, k_now: int, power: float = stats.POWER) -> dict[str, float]:
    """Per strategy: the true mean tau drop the gate fails with probability `power`, if the baseline's sd is the
    true one (exact noncentral t with the sd's degrees of freedom)."""
    drops = {}
    for name in baseline.strategies:
        sd, df, _how = seed_scale(baseline, name)
        drops[name] = stats.drop_caught_with_power(sd, df, k_now, len(baseline.strategies[name].taus),
                                                   baseline.false_alarm, power)
    return drops


def fresh_runs_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="harness-regress-")
