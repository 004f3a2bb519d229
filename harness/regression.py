"""The CI ranking-regression gate: rerun a fixed small set, compare each Kendall tau with a committed baseline.

Same-seed CPU runs are bit-for-bit repeatable on one platform (CPU kernel set, torch build) with a fixed
thread count, so the gate pins the thread count and compares equal seeds exactly there: any drop fails.
Supernet training is chaotic, though: another summation order (another thread count, another CPU's
kernels) gives a different tau of the size of the seed-to-seed spread, not a rounding-sized one (measured
in docs/tables_and_ci.md). On another platform the gate therefore allows a drop of
`cross_platform_tolerance`, derived from that spread, and says so. Re-baselining (`make rebaseline`) is a
deliberate, reviewed act.
"""
from __future__ import annotations

import datetime as dt
import math
import platform
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from harness.envinfo import git_state
from harness.errors import HarnessError
from harness.fileio import read_json, write_json
from harness.registry import STRATEGIES
from harness.run import BenchRequest, bench

BASELINE_FILE = Path("results/baselines/regress.json")
PRESET = "regress"
SEED = 0
THREADS = 1
# Always gated, and gated as soon as they are registered (a strategy module that registers itself is enough).
REQUIRED = ("ws",)
OPTIONAL = ("dinas",)
# Allowed tau drop on the recorded platform: equal-seed reruns there agree bit for bit, so none.
DEFAULT_TOLERANCE = 0.0
# Allowed drop elsewhere: about two seed standard deviations of tau at the regress preset (see the docs).
DEFAULT_CROSS_PLATFORM_TOLERANCE = 0.15
# Rounding of the tau comparison itself.
EPSILON = 1e-9
REBASELINE = "make rebaseline"

Runner = Callable[[BenchRequest], dict]


@dataclass
class Entry:
    strategy: str
    preset: str
    seed: int
    tau: float
    tolerance: float
    commit: str | None
    threads: int
    platform: str = ""
    cross_platform_tolerance: float = DEFAULT_CROSS_PLATFORM_TOLERANCE
    wall_seconds: float | None = None
    recorded_at: str | None = None


@dataclass
class Outcome:
    strategy: str
    tau: float | None
    wall_seconds: float | None
    error: str | None = None


def platform_key() -> str:
    """What decides the floating-point results of a CPU run: machine, CPU kernel set, torch build."""
    return f"{platform.machine()} {torch.backends.cpu.get_cpu_capability()} torch {torch.__version__}"


def fixed_set() -> list[str]:
    names = STRATEGIES.names()
    missing = [s for s in REQUIRED if s not in names]
    if missing:
        raise HarnessError(f"regression set needs strategies {missing}, which are not registered")
    return [*REQUIRED, *(s for s in OPTIONAL if s in names)]


def run_set(strategies: Sequence[str], runs_dir: Path, preset: str = PRESET, seed: int = SEED,
            threads: int = THREADS, data_dir: str | None = None, runner: Runner | None = None,
            log: Callable[[str], None] = print) -> list[Outcome]:
    """Runs each strategy once into `runs_dir`; a failing run is an outcome with an error, not an exception."""
    runner = runner or bench
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    outcomes = []
    try:
        for name in strategies:
            log(f"regress: running {name} (preset {preset}, seed {seed}, {threads} thread(s))")
            started = time.time()
            req = BenchRequest(strategy=name, preset=preset, seed=seed, runs_dir=Path(runs_dir), data_dir=data_dir, progress=False)
            try:
                metrics = runner(req)
            except HarnessError as exc:
                outcomes.append(Outcome(name, None, time.time() - started, str(exc)))
                continue
            tau = metrics.get("metrics", {}).get("kendall_tau")
            wall = time.time() - started
            outcomes.append(Outcome(name, None if tau is None else float(tau), wall))
            log(f"regress: {name} tau={tau if tau is None else f'{tau:.4f}'} in {wall:.0f}s")
    finally:
        torch.set_num_threads(previous)
    return outcomes


def load_baseline(path: Path = BASELINE_FILE) -> dict[str, Entry]:
    if not Path(path).is_file():
        return {}
    try:
        raw = read_json(path)
        return {e["strategy"]: Entry(**e) for e in raw["entries"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"corrupt regression baseline {path}: {exc}; recreate it with `{REBASELINE}`") from None


def compare(baseline: dict[str, Entry], outcomes: Sequence[Outcome], preset: str = PRESET, seed: int = SEED,
            threads: int = THREADS, platform_now: str | None = None) -> tuple[list[str], list[str]]:
    """(failures, notes): one line per failure naming strategy, old and new tau and the re-baseline command."""
    platform_now = platform_key() if platform_now is None else platform_now
    failures, notes = [], []
    for out in outcomes:
        old = baseline.get(out.strategy)
        if out.error is not None:
            failures.append(f"{out.strategy}: the run failed ({out.error}); baseline tau {_fmt(old.tau if old else None)}")
            continue
        if old is None:
            failures.append(f"{out.strategy}: no baseline recorded (new tau {_fmt(out.tau)}); record one with `{REBASELINE}`")
            continue
        if (old.preset, old.seed) != (preset, seed):
            failures.append(f"{out.strategy}: baseline was recorded for preset {old.preset} seed {old.seed}, not {preset} seed {seed}; `{REBASELINE}`")
            continue
        if out.tau is None or math.isnan(out.tau):
            failures.append(f"{out.strategy}: tau is undefined now (baseline {_fmt(old.tau)}); see the run directory")
            continue
        same = old.platform == platform_now and old.threads == threads
        tolerance = old.tolerance if same else old.cross_platform_tolerance
        if not same:
            notes.append(
                f"{out.strategy}: baseline recorded on [{old.platform}] with {old.threads} thread(s), this run [{platform_now}] "
                f"with {threads}: bit-equality is not expected, allowing a drop of {tolerance:g}"
            )
        drop = old.tau - out.tau
        where = f"(preset {preset}, seed {seed}; baseline from commit {(old.commit or '?')[:10]})"
        if drop > tolerance + EPSILON:
            failures.append(
                f"{out.strategy}: Kendall tau fell from {old.tau:.4f} to {out.tau:.4f} (-{drop:.4f}, tolerance {tolerance:g}) "
                f"{where}; if intended, re-baseline with `{REBASELINE}`"
            )
        elif -drop > EPSILON:
            notes.append(f"{out.strategy}: tau rose from {old.tau:.4f} to {out.tau:.4f}; lock the gain in with `{REBASELINE}`")
        else:
            notes.append(f"{out.strategy}: tau {out.tau:.4f} vs baseline {old.tau:.4f} (allowed drop {tolerance:g}) ok")
    ran = {o.strategy for o in outcomes}
    for name in sorted(set(baseline) - ran):
        failures.append(f"{name}: in the baseline but not run (not registered any more?); if intended, `{REBASELINE}`")
    return failures, notes


def record(outcomes: Sequence[Outcome], path: Path = BASELINE_FILE, preset: str = PRESET, seed: int = SEED,
           threads: int = THREADS, tolerance: float = DEFAULT_TOLERANCE,
           cross_platform_tolerance: float = DEFAULT_CROSS_PLATFORM_TOLERANCE) -> dict[str, Entry]:
    bad = [o for o in outcomes if o.error is not None or o.tau is None or math.isnan(o.tau)]
    if bad:
        reasons = ", ".join(f"{o.strategy} ({o.error or 'no tau'})" for o in bad)
        raise HarnessError(f"cannot re-baseline: {reasons}")
    for name, value in (("tolerance", tolerance), ("cross_platform_tolerance", cross_platform_tolerance)):
        if not value >= 0:
            raise HarnessError(f"{name}={value!r} must be >= 0")
    commit = git_state().get("commit")
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    entries = {
        o.strategy: Entry(o.strategy, preset, seed, float(o.tau), tolerance, commit, threads, platform_key(),
                          cross_platform_tolerance, o.wall_seconds, now)
        for o in outcomes
    }
    write_json(path, {
        "about": "Kendall tau of the CI regression set; compared by `make regress`, rewritten only by `make rebaseline`.",
        "entries": [asdict(e) for e in entries.values()],
    })
    return entries


def fresh_runs_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="harness-regress-")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"
