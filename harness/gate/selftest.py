"""`make regress-selftest`: plant known regressions and show that the gate fails each and passes clean code.

Clean code is run twice: on the gate's own seeds (what `make regress` runs: the baseline's seeds, so a
deterministic rerun drops by exactly 0) and on fresh seeds the baseline never saw (FRESH_SEED_START on), where
the seed-to-seed noise the tolerance is meant for is really present. Both must pass.

Test-only registry of planted faults. None edits a source file: each is a config override, or a patch
applied by monkeypatching inside the worker process that runs the affected runs (spawned here, so a
patch never leaks into a clean run), and undone afterwards. The faults:

* sampler_gap   -- the path sampler never picks nor_conv_3x3 on edge 1<-0 (it picks avg_pool_3x3 instead,
                   same random numbers consumed), so those weights stay at their initialisation;
* bn_running    -- estimation normalises with (never-updated) running statistics instead of the batch
                   statistics the supernet was trained with: the wrong BN mode at estimation;
* lr_tenth      -- train.lr x 0.1 (a config override);
* no_projection -- dinas's projection step does nothing (dinas degenerates to ws).

Graded regressions (lr_half, lr_quarter, with lr_tenth) scale the learning rate by 0.5, 0.25 and 0.1: they
are not required to be caught; their results form the gate's detection curve (docs/noise.md).

Each fault runs only its target strategies on the gate's seeds; the other gated strategies keep their
clean outcomes, so the gate sees exactly one thing changed, as a real regression would.
"""
from __future__ import annotations

import contextlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Sequence

from harness.gate import regression
from harness.config import resolve
from harness.errors import HarnessError
from harness.runs.fileio import read_json
from harness.gate.regression import Outcome
from harness.runs.sweep import Cell, CellResult
from harness.scoring.archsets import TUNING_SEEDS_FROM


@contextlib.contextmanager
def _patched(owner, name: str, value):
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _sampler_gap() -> ContextManager:
    from harness.spaces.nb201 import NB201Space
    from harness.spaces.nb201.arch import CONV3, POOL, Arch

    original = NB201Space.sample

    def sample(self, rng, allowed=None):
        arch = original(self, rng, allowed)
        ops = list(arch.ops)
        if ops[0] == CONV3:
            ops[0] = POOL
        return Arch(tuple(ops))

    return _patched(NB201Space, "sample", sample)


def _bn_running() -> ContextManager:
    import torch
    from harness.training import evaluation

    def tally_supernet(net, archs, batches, progress=False, desc="estimate", per_pass=0, flip=False):
        bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        saved = [(m.track_running_stats, m.running_mean, m.running_var, m.num_batches_tracked) for m in bns]
        for m in bns:  # fresh, never-updated running statistics, used in eval mode
            m.track_running_stats = True
            m.running_mean = torch.zeros(m.num_features, device=next(net.parameters()).device)
            m.running_var = torch.ones_like(m.running_mean)
            m.num_batches_tracked = torch.zeros((), dtype=torch.long)
        try:
            # one architecture at a time: the batched path normalises with batch statistics by construction
            return evaluation.tally_archs(net, archs, batches, progress, desc, flip)
        finally:
            for m, (track, mean, var, count) in zip(bns, saved):
                m.track_running_stats, m.running_mean, m.running_var, m.num_batches_tracked = track, mean, var, count

    return _patched(evaluation, "tally_supernet", tally_supernet)


def _no_projection() -> ContextManager:
    from harness.strategies.dinas.strategy import DisturbanceImmune
    from harness.strategies.supernet import SinglePathStrategy

    # The projection happens where the update is applied (every strategy.dinas.apply): ws's plain step instead.
    return _patched(DisturbanceImmune, "apply_update", SinglePathStrategy.apply_update)


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    targets: tuple[str, ...]
    patch: Callable[[], ContextManager] | None = None
    lr_factor: float | None = None
    # Graded: a point of the detection curve only, not a regression the gate must catch.
    graded: bool = False

    def overrides(self, preset: str) -> tuple[str, ...]:
        if self.lr_factor is None:
            return ()
        return (f"train.lr={resolve(preset).train.lr * self.lr_factor!r}",)

    def applied(self) -> ContextManager:
        return self.patch() if self.patch else contextlib.nullcontext()


FAULTS = {f.name: f for f in (
    Fault("sampler_gap", "sampler never picks nor_conv_3x3 on edge 1<-0", ("ws",), _sampler_gap),
    Fault("bn_running", "estimation with running BN statistics instead of batch statistics", ("ws",), _bn_running),
    Fault("lr_tenth", "learning rate x 0.1", ("ws",), lr_factor=0.1),
    Fault("no_projection", "dinas with its projection disabled", ("dinas",), _no_projection),
    Fault("lr_half", "learning rate x 0.5", ("ws",), lr_factor=0.5, graded=True),
    Fault("lr_quarter", "learning rate x 0.25", ("ws",), lr_factor=0.25, graded=True),
)}
# Clean code also runs on seeds FRESH_SEED_START, FRESH_SEED_START + 1, ... (as many as the gate's seeds):
# the first tuning seeds, which no baseline uses.
FRESH_SEED_START = TUNING_SEEDS_FROM


def fresh_seeds(seeds: Sequence[int], start: int = FRESH_SEED_START) -> list[int]:
    if start < 0:
        raise HarnessError(f"--fresh-seed-start {start} must be >= 0")
    fresh = list(range(start, start + len(seeds)))
    if set(fresh) & set(seeds):
        raise HarnessError(f"fresh seeds {fresh[0]}..{fresh[-1]} overlap the gate's seeds {list(seeds)}: they must be new to the baseline")
    return fresh


def run_cell_here(cell: Cell, runs_dir: str, data_dir: str | None, fault: str | None) -> CellResult:
    """In a worker process: apply the fault (if any), run one cell in this process, return its result."""
    from harness.runs.run import bench, run_name
    from harness.runs.sweep import cell_request

    req = cell_request(cell, Path(runs_dir), data_dir=data_dir)  # named as the gate's sweep names it
    run_dir = Path(runs_dir) / run_name(req)
    req.resume = (run_dir / "config.json").exists()
    try:
        with FAULTS[fault].applied() if fault else contextlib.nullcontext():
            metrics = bench(req)
    except Exception as exc:  # a failed run is an outcome the gate judges
        status = run_dir / "status.json"
        error = read_json(status).get("error") if status.exists() else None
        return CellResult(cell, run_dir, "failed", error or f"{type(exc).__name__}: {exc}", None)
    tau = metrics.get("metrics", {}).get("kendall_tau")
    return CellResult(cell, run_dir, "complete", None, None if tau is None else float(tau))


def run_jobs(jobs: Sequence[tuple[Cell, str | None]], runs_dir: Path, data_dir: str | None, workers: int,
             log: Callable[[str], None] = print) -> list[CellResult]:
    """(cell, fault) pairs in `workers` fresh processes each (spawned: no patch survives into another job)."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, max_tasks_per_child=1) as pool:
        # One directory per fault: a patched run has the same identity (name) as its clean twin.
        futures = [pool.submit(run_cell_here, cell, str(Path(runs_dir) / (fault or "clean")), data_dir, fault)
                   for cell, fault in jobs]
        results = []
        for (cell, fault), future in zip(jobs, futures):
            result = future.result()
            log(f"selftest: {fault or 'clean'} {cell.strategy} seed {cell.seed}: {result.state}"
                + (f" tau={result.kendall_tau:.4f}" if result.kendall_tau is not None else f" ({result.error})"))
            results.append(result)
    return results


def gate_failures(baseline: regression.Baseline, outcomes: Sequence[Outcome], preset: str) -> list[str]:
    failures, _notes = regression.check(baseline, outcomes, preset)
    return failures + regression.identical_strategies(outcomes)


def curve_table(points: Sequence[tuple[Fault, list[dict]]], seeds: Sequence[int]) -> list[str]:
    """The learning-rate faults' report rows (`report_rows`), weakest regression first, as markdown lines."""
    lines = [f"| regression ({len(seeds)} gate seeds) | strategy | mean tau | drop | allowed drop | gate |",
             "|---|---|---|---|---|---|"]
    for fault, rows in sorted(points, key=lambda p: -(p[0].lr_factor or 0.0)):
        lines += [f"| lr x {fault.lr_factor:g} | {r['strategy']} | {r['mean tau']} | {r['drop']} | {r['allowed drop']} | "
                  f"{'fails (caught)' if r['gate'] == 'caught' else 'passes (missed)'} |" for r in rows]
    return lines


def selftest(baseline: regression.Baseline, strategies: Sequence[str], seeds: Sequence[int], preset: str, runs_dir: Path,
             data_dir: str | None = None, workers: int = 2, faults: Sequence[str] | None = None,
             runner: Callable[..., list[CellResult]] = run_jobs, log: Callable[[str], None] = print,
             fresh_start: int = FRESH_SEED_START, csv_path: Path | None = None) -> tuple[int, int, bool]:
    """(caught, planted, clean_passed): planted counts the regressions that must be caught (graded ones are
    reported in the detection curve only); clean_passed needs clean code to pass on the gate's seeds and on
    fresh ones. Every run goes through one pool so the runs of all faults overlap. With `csv_path`, one row
    per check and strategy (`report_rows`) is written there, for the gate's docs."""
    names = list(faults or FAULTS)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise HarnessError(f"unknown planted faults {unknown}; accepted: {', '.join(FAULTS)}")
    fresh = fresh_seeds(seeds, fresh_start)
    applicable = [FAULTS[n] for n in names if any(t in strategies for t in FAULTS[n].targets)]
    for n in names:
        if FAULTS[n] not in applicable:
            log(f"selftest: {n} skipped: its targets {FAULTS[n].targets} are not gated here")
    jobs = [(c, None) for c in regression.cells(strategies, seeds, preset)]
    jobs += [(c, None) for c in regression.cells(strategies, fresh, preset)]
    for fault in applicable:
        targets = [t for t in fault.targets if t in strategies]
        jobs += [(c, fault.name) for c in regression.cells(targets, seeds, preset, fault.overrides(preset))]
    results = runner(jobs, Path(runs_dir), data_dir, workers)
    by_fault: dict[str | None, list[Outcome]] = {}
    for (cell, fault), result in zip(jobs, results):
        by_fault.setdefault(fault, []).append(regression.outcome(result))
    clean = [o for o in by_fault.get(None, []) if o.seed in seeds]
    clean_fresh = [o for o in by_fault.get(None, []) if o.seed in fresh]
    clean_ok = True
    rows: list[dict] = []
    for label, outcomes in ((f"the gate's seeds {_span(seeds)}", clean), (f"fresh seeds {_span(fresh)}", clean_fresh)):
        failures = gate_failures(baseline, outcomes, preset)
        for line in failures:
            log(f"selftest: clean code on {label} FAILED the gate: {line}")
        if not failures:
            _f, notes = regression.check(baseline, outcomes, preset)
            log(f"selftest: clean code on {label} passed the gate -- " + " | ".join(notes))
        clean_ok = clean_ok and not failures
        rows += report_rows(baseline, f"clean code, {label}", "must pass", outcomes, bool(failures))
    caught, graded = 0, []
    for fault in applicable:
        changed = by_fault.get(fault.name, [])
        targets = {o.strategy for o in changed}
        mixed = [o for o in clean if o.strategy not in targets] + changed
        failures = gate_failures(baseline, mixed, preset)
        kind = "graded regression" if fault.graded else "planted regression"
        if failures:
            caught += 0 if fault.graded else 1
            log(f"selftest: {fault.name} ({fault.description}, {kind}): caught -- {failures[0]}")
        else:
            _f, notes = regression.check(baseline, mixed, preset)
            log(f"selftest: {fault.name} ({fault.description}, {kind}): NOT caught -- " + " | ".join(notes))
        fault_rows = report_rows(baseline, f"{fault.name}: {fault.description}",
                                 "graded: reported" if fault.graded else "must be caught", changed, bool(failures))
        if fault.lr_factor is not None:
            graded.append((fault, fault_rows))
        rows += fault_rows
    if graded:
        log("selftest: detection curve (learning-rate regressions on the gate's seeds):")
        for line in curve_table(graded, seeds):
            log(f"selftest: {line}")
    if csv_path is not None:
        write_rows(rows, Path(csv_path))
        log(f"selftest: wrote {csv_path}")
    return caught, sum(not f.graded for f in applicable), clean_ok


def report_rows(baseline: regression.Baseline, check: str, required: str, outcomes: Sequence[Outcome],
                gate_failed: bool) -> list[dict]:
    """One row per strategy of one check: its seeds, mean tau, drop from the baseline mean, the drop the gate
    allows at that many seeds, and what the whole gate said (for a fault: caught = the gate failed)."""
    if required == "must pass":
        verdict = "FAILED" if gate_failed else "passed"
    else:
        verdict = "caught" if gate_failed else "missed"
    rows = []
    for name in dict.fromkeys(o.strategy for o in outcomes):
        runs = [o for o in outcomes if o.strategy == name]
        taus = [o.tau for o in runs if o.tau is not None]
        mean, drop, allowed = float("nan"), "", ""
        if taus and name in baseline.strategies:
            mean, dropped, tol = regression.mean_drop(baseline, name, taus)
            drop, allowed = f"{dropped:+.4f}", f"{tol:.4f}"
        elif taus:
            mean = sum(taus) / len(taus)
        rows.append({"check": check, "required": required, "strategy": name, "seeds": _span([o.seed for o in runs]),
                     "mean tau": f"{mean:.4f}", "drop": drop, "allowed drop": allowed, "gate": verdict})
    return rows


def write_rows(rows: Sequence[dict], path: Path) -> None:
    import pandas as pd
    from harness.runs.fileio import write_text

    write_text(path, pd.DataFrame(list(rows)).to_csv(index=False))


def _span(seeds: Sequence[int]) -> str:
    seeds = sorted(seeds)
    return f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 1 else ",".join(map(str, seeds))
