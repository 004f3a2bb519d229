"""One benchmark run: config -> data + space -> strategy training -> estimates -> metrics -> run directory.

Run directory files (all written atomically): config.json (with the run's identity), status.json,
checkpoint.pt, estimates.npz (estimates checkpointed chunk by chunk), predictions.csv, metrics.json,
env.json, run.log, run.lock. A run directory is never overwritten: an existing one is continued with
--resume (its identity must match) or refused, and only one process at a time may hold it.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from harness.training import engine
from harness.scoring.archsets import arch_split, check_counts, probe_archs, scored_archs
from harness.config import Config, build_options, check_strategy_overrides, resolve
from harness.data.paths import data_root
from harness.data.tensors import DeviceData
from harness.runs.envinfo import environment, git_state
from harness.errors import HarnessError, one_of
from harness.data.cifar import FOLDERS as DATASETS
from harness.scoring.estimators import estimate_columns, estimator_reports
from harness.runs.fileio import DISK_FULL, atomic_write, read_json, write_bytes, write_failure, write_json
from harness.scoring.groundtruth import GroundTruth
from harness.runs.identity import check_identity, recorded_config, run_identity
from harness.runs.lock import RunLock
from harness.runs.signals import TermRaises
from harness.scoring.metrics import ranking_report
from harness.registry import FEATURES, SPACES, STRATEGIES
from harness.strategies.base import Strategy, StrategyContext
from harness.training.weight_average import WeightAverage

RUNS_DIR = Path("results/runs")
ESTIMATES_FILE = "estimates.npz"
# torch.manual_seed takes 64-bit seeds; run names, tables and numpy int64 columns hold seeds below 2**63.
SEED_LIMIT = 2**63
# Bytes of a run directory's name: filesystems allow 255, the atomic writes' temporary names need the rest.
NAME_LIMIT = 200
# Files a complete run must still hold; without one it is damaged and rebuilt on --resume.
RESULT_FILES = ("metrics.json", "predictions.csv")
TRUTH_PREDICTIONS_FILE = "truth_predictions.csv"  # the proxy truth's architectures: estimate, benchmark and proxy truth


@dataclass
class BenchRequest:
    strategy: str
    space: str = "nb201"
    preset: str = "mini"
    seed: int = 0
    overrides: tuple[str, ...] = ()
    runs_dir: Path = RUNS_DIR
    name: str | None = None
    resume: bool = False
    device: str = "auto"
    data_dir: str | None = None
    progress: bool = True
    plugins: tuple[str, ...] = ()  # modules imported first (--plugin); the preset's `plugins` are added to them

def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu" or (name.startswith("cuda") and torch.cuda.is_available()):
        return torch.device(name)
    raise HarnessError(f"device {name!r} is not available; accepted: auto, cpu" + (", cuda" if torch.cuda.is_available() else ""))


def run_name(req: BenchRequest) -> str:
    if req.name:
        return req.name
    base = f"{req.strategy}-{req.space}-{req.preset}-seed{req.seed}"
    if req.overrides:
        base += "-" + hashlib.sha256("\n".join(sorted(req.overrides)).encode()).hexdigest()[:8]
    return base


def check_run_dir(runs_dir: Path, name: str) -> Path:
    """The run directory for `name` under `runs_dir`, refusing names that leave it and unusable folders."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or name != name.strip() or "\x00" in name:
        raise HarnessError(f"--name {name!r} must be a plain folder name inside the runs directory (no '/', '..' or surrounding spaces)")
    if len(name.encode()) > NAME_LIMIT:
        raise HarnessError(f"--name of {len(name.encode())} bytes is too long; accepted: at most {NAME_LIMIT} bytes ({name[:40]!r}...)")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise HarnessError(f"--name {name!r} holds control characters; accepted: printable characters (letters, digits, . _ - + =)")
    runs_dir = Path(runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise HarnessError(f"--runs-dir {runs_dir} is not a directory; accepted: a directory, or a path that does not exist yet")
    if _is_complete(runs_dir / name):
        return runs_dir / name  # read, never written: a read-only runs directory still serves it
    existing = runs_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise HarnessError(f"--runs-dir {runs_dir} is not writable ({existing} is not a writable directory); accepted: a writable directory")
    return runs_dir / name


@dataclass
class Plan:
    """A validated request: everything that can be checked without data or training."""

    req: BenchRequest
    strategy_cls: Any
    space: Any
    cfg: Config
    options: Any
    device: torch.device
    run_dir: Path
    ground_truth_warning: str | None
    proxy_truth: Any = None  # scoring.proxytruth.ProxyTruth of this space and preset, if one was built on its task
    proxy_truth_note: str | None = None


def plan(req: BenchRequest) -> Plan:
    """Validates a request before any work (also used by sweeps, for every cell before any run starts)."""
    req = with_plugins(req)
    strategy_cls = STRATEGIES.get(req.strategy)
    space = SPACES.get(req.space)()
    if isinstance(req.seed, bool) or not isinstance(req.seed, int) or not 0 <= req.seed < SEED_LIMIT:
        raise HarnessError(f"--seed {req.seed!r} must be an integer >= 0 and < 2**63; accepted: 0..{SEED_LIMIT - 1}")
    check_strategy_overrides(req.strategy, req.overrides)
    cfg = resolve(req.preset, req.overrides, space=req.space)
    if cfg.data.dataset not in DATASETS:
        raise one_of("data.dataset", cfg.data.dataset, DATASETS)
    if space.ground_truth_columns and cfg.eval.ground_truth not in space.ground_truth_columns:
        raise HarnessError(f"{one_of('eval.ground_truth', cfg.eval.ground_truth, space.ground_truth_columns)} "
                           f"(the ground-truth columns of space {req.space})")
    options = build_options(strategy_cls.Options, cfg.strategy.get(req.strategy, {}), req.strategy)
    if strategy_cls.averaged_modules is Strategy.averaged_modules:
        for name, value, plain in (("weights", cfg.eval.weights, "final"), ("flip", cfg.eval.flip, False),
                                   ("all_estimators", cfg.eval.all_estimators, False)):
            if value != plain:
                raise HarnessError(f"eval.{name}={value!r} needs a supernet to estimate with; strategy {req.strategy!r} "
                                   f"scores without one (accepted for it: eval.{name}={plain!r})")
    device = pick_device(req.device)
    run_dir = check_run_dir(req.runs_dir, run_name(req))
    warning = None
    dataset, column = cfg.data.dataset, cfg.eval.ground_truth
    if space.ground_truth_dataset(column) != dataset:
        if not cfg.eval.allow_other_dataset_ground_truth:
            raise HarnessError(
                f"data.dataset={dataset!r} would be scored against ground-truth column eval.ground_truth={column!r} of another "
                f"dataset; accepted: eval.ground_truth={dataset}_test, or --set eval.allow_other_dataset_ground_truth=true"
            )
        warning = f"trained on {dataset} but scored against the {column} ground truth (eval.allow_other_dataset_ground_truth=true)"
    from harness.scoring.proxytruth import find

    proxy, note = find(req.space, req.preset, cfg)
    return Plan(req, strategy_cls, space, cfg, options, device, run_dir, warning, proxy, note)


def with_plugins(req: BenchRequest) -> BenchRequest:
    """The request with every plug-in it runs with (its own, then its preset's), all imported."""
    from harness.config import preset_plugins
    from harness.plugins import load_plugins

    mine = load_plugins(req.plugins)
    from_preset = load_plugins(preset_plugins(req.preset, req.space), where=f"preset {req.preset!r} plugins entry")
    every = tuple(dict.fromkeys(mine + from_preset))
    return req if every == tuple(req.plugins) else replace(req, plugins=every)


def _record(cfg: Config, req: BenchRequest, device: torch.device, identity: dict) -> dict:
    record = recorded_config(cfg, req.strategy)
    return {
        "strategy": req.strategy,
        "space": req.space,
        "preset": req.preset,
        "seed": req.seed,
        "overrides": list(req.overrides),
        "device": str(device),
        "config": record,
        "identity": identity,
        "identity_digest": identity["digest"],
        **({"plugins": list(req.plugins)} if req.plugins else {}),
        "origins": {"strategy": STRATEGIES.origin(req.strategy), "space": SPACES.origin(req.space)},
    }


def _logger(run_dir: Path) -> logging.Logger:
    log = logging.getLogger(f"harness.runs.run.{run_dir}")
    log.setLevel(logging.INFO)
    log.propagate = False
    if not log.handlers:
        handler = _QuietFileHandler(run_dir / "run.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
    return log


class _QuietFileHandler(logging.FileHandler):
    """run.log is a record, not the run's channel to the user: a log line that cannot be written (full disk)
    must not print logging's own traceback; the run's error still reaches the user as one line."""

    def handleError(self, record) -> None:  # noqa: N802 - logging's name
        pass


def _close_logger(log: logging.Logger) -> None:
    for handler in list(log.handlers):
        handler.close()
        log.removeHandler(handler)


class Terminated(KeyboardInterrupt):
    """SIGTERM outside the training loop (which handles it itself): ends the run like Ctrl-C."""

    exit_code = 128 + signal.SIGTERM


def _record_end(status_path: Path, log: logging.Logger, status: dict, message: str, level: int = logging.ERROR) -> None:
    """Best effort: on a full disk the status write itself may fail; run.log and stderr still say why."""
    status = {**status, "ended": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid()}
    try:
        write_json(status_path, status)
    except OSError:
        try:  # in place: no new file to allocate
            with open(status_path, "w") as handle:
                handle.write(json.dumps(status) + "\n")
        except OSError:
            pass
    try:
        log.log(level, "%s", message)
    except Exception:  # noqa: BLE001 - logging must never mask the run's own error
        pass


def bench(req: BenchRequest) -> dict:
    """Runs (or resumes) one benchmark and returns its metrics.json content."""
    p = plan(req)
    req = p.req  # with its preset's plug-ins
    cfg, device, run_dir, space = p.cfg, p.device, p.run_dir, p.space
    if cfg.compute.threads:
        torch.set_num_threads(cfg.compute.threads)

    if (run_dir / "config.json").exists() and not req.resume:
        status = run_state(run_dir)
        damage = f", damaged: {', '.join(missing_results(run_dir))} missing" if status == "complete" and missing_results(run_dir) else ""
        raise HarnessError(f"run directory {run_dir} already exists (status: {status}{damage}); pass --resume to continue it, or --name to start another")
    if not (run_dir / "config.json").exists() and req.resume:
        raise HarnessError(f"nothing to resume: {run_dir} does not exist")

    # Load everything that can fail on bad input before writing anything.
    root = data_root(req.data_dir)
    gt = space.load_ground_truth(root, cfg.eval.ground_truth)
    if cfg.eval.num_archs > len(gt.table):
        raise HarnessError(f"eval.num_archs={cfg.eval.num_archs} is more than the {len(gt.table)} architectures of {gt.path.name}; "
                           f"accepted: 2..{len(gt.table)}, or 0 for all of them")
    check_counts(space, gt, cfg.eval.num_archs, cfg.eval.probe_archs, cfg.eval.split_seed)
    torch.manual_seed(req.seed)
    data = DeviceData(cfg.data, device, root=root)
    identity = run_identity(req, cfg, p.options, data.files + [gt.path], root, device)
    compute = engine.configure(cfg.compute, device, data)
    shape = p.space.shape(num_classes=data.num_classes, **vars(cfg.shape))
    total_steps = cfg.train.steps or cfg.train.epochs * data.steps_per_epoch
    ctx = StrategyContext(p.space, shape, cfg.train, data, device, req.seed, total_steps, req.progress, cfg.eval.estimate_by,
                          cfg.compute, cfg.eval.flip, cfg.eval.all_estimators)
    strategy = p.strategy_cls(ctx, p.options)
    hooks = [
        FEATURES.get(name)(opts, ctx, ground_truth=gt, eval_config=cfg.eval)
        for name, opts in sorted(cfg.features.items())
        if opts.get("enabled", False)
    ]
    if cfg.eval.averages_weights:  # last, so the checkpoints of runs without it keep their hook order
        hooks.append(WeightAverage(strategy.training_steps(), cfg.eval.ema_horizon))

    if _is_complete(run_dir):
        # A complete run is only read (no lock, no write): its files were written atomically and never change.
        check_identity(run_dir, identity, p.strategy_cls.Options)
        return read_json(run_dir / "metrics.json")
    created = _first_missing(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with RunLock(run_dir):
            # Checked again under the lock: another process may have created the run since the check above.
            if (run_dir / "config.json").exists() and not req.resume:
                raise HarnessError(f"run directory {run_dir} already exists (status: {run_state(run_dir)}); pass --resume to continue it, or --name to start another")
            if (run_dir / "config.json").exists():
                check_identity(run_dir, identity, p.strategy_cls.Options)
                if _is_complete(run_dir):
                    return read_json(run_dir / "metrics.json")
                _check_rebuildable(run_dir)
            else:
                write_json(run_dir / "config.json", _record(cfg, req, device, identity))
            created = None  # from here on the run directory holds a run, and _execute reports its own failures
            return _execute(p, gt, data, identity, strategy, hooks, compute)
    except OSError as exc:
        # Only before the run started (mkdir, lock, config.json): nothing of value is lost by removing what this call made.
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        left = "nothing was left behind" if created is not None else "nothing in it was changed"
        raise HarnessError(f"run {run_dir} could not start: {write_failure(exc, run_dir)}; {left}") from None


def missing_results(run_dir: Path) -> list[str]:
    """The result files a run recorded as complete no longer holds (deleted or moved by hand)."""
    return [name for name in RESULT_FILES if not (run_dir / name).is_file()]


def _is_complete(run_dir: Path) -> bool:
    return (run_dir / "config.json").is_file() and run_state(run_dir) == "complete" and not missing_results(run_dir)


def _check_rebuildable(run_dir: Path) -> None:
    """A run recorded complete but missing results is rebuilt from its estimates or final checkpoint; with neither,
    rerunning would silently train it again from scratch, so the user decides."""
    missing = missing_results(run_dir)
    if run_state(run_dir) != "complete" or not missing:
        return
    if not (run_dir / ESTIMATES_FILE).is_file() and not (run_dir / "checkpoint.pt").is_file():
        raise HarnessError(f"run {run_dir} is damaged: {', '.join(missing)} missing and neither {ESTIMATES_FILE} nor checkpoint.pt "
                           f"is left to rebuild from; delete the directory and run again to redo it")
    print(f"run {run_dir} is damaged ({', '.join(missing)} missing): rebuilding from "
          f"{ESTIMATES_FILE if (run_dir / ESTIMATES_FILE).is_file() else 'checkpoint.pt'}", flush=True)


def _first_missing(path: Path) -> Path | None:
    """The outermost directory of `path` that does not exist yet (what mkdir(parents=True) would create)."""
    path = Path(path).absolute()
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def run_state(run_dir: Path) -> str:
    """The state a run directory's status.json records ('unknown' when it cannot be read)."""
    try:
        return read_json(run_dir / "status.json").get("state", "unknown")
    except (OSError, ValueError, AttributeError):
        return "unknown"


def _execute(p: Plan, gt: GroundTruth, data: DeviceData, identity: dict, strategy, hooks, compute: dict) -> dict:
    req, cfg, device, run_dir, space = p.req, p.cfg, p.device, p.run_dir, p.space
    log = _logger(run_dir)
    status_path = run_dir / "status.json"
    ckpt_path = run_dir / "checkpoint.pt"
    started = time.time()
    progress = {"step": 0, "phase": "training", "saved": None}
    if p.ground_truth_warning:
        log.warning("%s", p.ground_truth_warning)
        print(f"WARNING: {p.ground_truth_warning}", flush=True)
    try:
        with TermRaises(Terminated):
            start_step = 0
            elapsed_before = 0.0
            if ckpt_path.exists():
                state = _load_checkpoint(ckpt_path, device)
                strategy.load_state_dict(state["strategy"])
                for hook, hook_state in zip(hooks, state.get("hooks", [])):
                    hook.load_state_dict(hook_state)
                start_step = progress["saved"] = state["step"]
                elapsed_before = state.get("train_seconds", 0.0)
                log.info("resumed from checkpoint at step %d", start_step)
            progress["step"] = start_step

            def save_checkpoint(step: int) -> None:
                state = {
                    "step": step,
                    "strategy": strategy.state_dict(),
                    "hooks": [h.state_dict() for h in hooks],
                    "train_seconds": elapsed_before + time.time() - started,
                }
                # Serialised in memory, then written with plain writes: a full disk is an OSError naming the file.
                buffer = io.BytesIO()
                torch.save(state, buffer)
                atomic_write(ckpt_path, lambda tmp: write_bytes(tmp, buffer.getbuffer()))
                progress["step"] = step
                progress["saved"] = step
                write_json(status_path, {"state": "running", "phase": "training", "step": step, "total_steps": strategy.training_steps()})

            if start_step == 0:
                save_checkpoint(0)
            log.info(
                "run %s: strategy=%s preset=%s seed=%d steps=%d device=%s threads=%d identity=%s",
                run_dir.name, req.strategy, req.preset, req.seed, strategy.training_steps(), device,
                torch.get_num_threads(), identity["digest"],
            )
            engine.train(strategy, data, req.seed, start_step, save_checkpoint, cfg.train.checkpoint_every, hooks, req.progress, log.info,
                         cfg.train.check_finite_every, cfg.compute)
            train_seconds = elapsed_before + time.time() - started

            progress["phase"] = "estimation"
            archs = scored_archs(space, gt, cfg.eval.num_archs, cfg.eval.arch_seed, cfg.eval.split_seed)
            probes = probe_set(space, gt, cfg.eval)
            extra = proxy_truth_extra(space, p.proxy_truth, archs + probes)
            # Scored, probe and proxy-truth architectures go through the same chunked, checkpointed path.
            averager = next((h for h in hooks if isinstance(h, WeightAverage)), None)
            with engine.autocast(cfg.compute, device):
                together, estimate_seconds = estimate_in_chunks(
                    lambda chunk: estimate_columns(strategy, chunk, cfg.eval, averager), archs + probes + extra, cfg.eval.chunk_archs, run_dir / ESTIMATES_FILE, status_path, strategy.training_steps(), log
                )
            estimates, rest = _split_rows(together, len(archs))
            probe_estimates, extra_estimates = _split_rows(rest, len(probes))
            metrics = _score(req, cfg, space, gt, archs, estimates, strategy, data, train_seconds, estimate_seconds)
            if averager is not None:
                metrics["weight_average"] = averager.summary()
            if cfg.eval.all_estimators:
                metrics["estimators"] = estimator_reports(space, gt, cfg.eval, archs, estimates, req.seed)
                if probes:
                    metrics["probe_estimators"] = estimator_reports(space, gt, cfg.eval, probes, probe_estimates, req.seed)
            if p.proxy_truth is not None:
                metrics["truth_decomposition"] = truth_decomposition(
                    space, gt, cfg, p.proxy_truth, archs + extra, np.concatenate([estimates["score"], extra_estimates["score"]]), req.seed,
                    run_dir / TRUTH_PREDICTIONS_FILE)
            elif p.proxy_truth_note:
                metrics["truth_decomposition_note"] = p.proxy_truth_note
            if cfg.eval.num_archs:
                metrics["arch_split"] = arch_split(space, gt, cfg.eval.split_seed).describe()
            metrics["identity_digest"] = identity["digest"]
            metrics["threads"] = torch.get_num_threads()
            metrics["dataset"] = cfg.data.dataset
            if p.ground_truth_warning:
                metrics["ground_truth_warning"] = p.ground_truth_warning
            _write_predictions(run_dir / "predictions.csv", gt, archs, estimates, cfg.eval.ground_truth)
            if probes:
                metrics["probe_metrics"] = _probe_report(cfg, space, gt, probes, probe_estimates, req.seed)
                _write_predictions(run_dir / "probe_predictions.csv", gt, probes, probe_estimates, cfg.eval.ground_truth)
            for hook in hooks:
                if hasattr(hook, "finish"):
                    hook.finish(run_dir)
            write_json(run_dir / "env.json", {**environment(device, data.files + [gt.path]), "compute": compute})
            write_json(run_dir / "metrics.json", metrics)
            write_json(status_path, {"state": "complete", "step": strategy.training_steps(), "total_steps": strategy.training_steps()})
            log.info("complete: kendall_tau=%.4f", metrics["metrics"]["kendall_tau"])
            return metrics
    except HarnessError as exc:
        # The training loop turns SIGINT/SIGTERM into an error at a step boundary ("interrupted by SIGTERM ...").
        state = "interrupted" if str(exc).startswith("interrupted by") else "failed"
        _record_end(status_path, log, {"state": state, "phase": progress["phase"], "step": progress["step"], "error": str(exc)}, f"{state}: {exc}")
        raise
    except KeyboardInterrupt as exc:
        why = f"interrupted by {exc.args[0] if isinstance(exc, Terminated) else 'SIGINT'} during {progress['phase']}"
        _record_end(status_path, log, {"state": "interrupted", "phase": progress["phase"], "step": progress["step"], "error": why}, why)
        raise
    except OSError as exc:
        why = f"{type(exc).__name__}: {exc}"
        # A full disk interrupts a run (nothing about it is wrong: freeing space and resuming finishes it unchanged).
        state = "interrupted" if exc.errno in DISK_FULL else "failed"
        kept = "no checkpoint yet" if progress["saved"] is None else f"its last complete checkpoint (step {progress['saved']}) is kept"
        if progress["phase"] == "estimation":
            kept += ", with the estimates made so far"
        _record_end(status_path, log, {"state": state, "phase": progress["phase"], "step": progress["step"], "error": why}, f"{state}: {why}")
        raise HarnessError(
            f"run {run_dir} {state} during {progress['phase']}: {write_failure(exc, run_dir)}; {kept}; "
            f"{'free space' if state == 'interrupted' else 'fix the cause'} and rerun the same command with --resume"
        ) from None
    except BaseException as exc:
        why = f"{type(exc).__name__}: {exc}"
        _record_end(status_path, log, {"state": "failed", "phase": progress["phase"], "step": progress["step"], "error": why}, "run failed")
        log.exception("run failed")
        raise
    finally:
        _close_logger(log)


def _load_checkpoint(path: Path, device: torch.device) -> dict:
    try:
        state = torch.load(path, map_location=device, weights_only=False)
        if not isinstance(state, dict) or "step" not in state or "strategy" not in state:
            raise ValueError("not a harness checkpoint")
        return state
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint means the same thing to the user
        raise HarnessError(
            f"cannot resume from {path}: the checkpoint is corrupt ({type(exc).__name__}); delete it to restart training from step 0, or use --name for a new run"
        ) from None


def estimate_in_chunks(estimate, archs: list, chunk: int, path: Path, status_path: Path, total_steps: int, log) -> tuple[dict, float]:
    """estimate(archs) over consecutive chunks of `archs`; after each chunk the estimates so far are saved
    atomically, and a resumed run reuses them (only if they were made for the same leading architectures)."""
    keys = np.array([str(a) for a in archs])
    done: dict[str, np.ndarray] = {}
    count, seconds = 0, 0.0
    if path.exists():
        try:
            with np.load(path, allow_pickle=True) as saved:
                saved_keys = saved["archs"]
                if len(saved_keys) <= len(keys) and np.array_equal(saved_keys, keys[: len(saved_keys)]):
                    count = len(saved_keys)
                    seconds = float(saved["seconds"])
                    done = {name[4:]: saved[name] for name in saved.files if name.startswith("est_")}
                    log.info("reusing the estimates of %d architectures from %s", count, path.name)
        except Exception as exc:  # noqa: BLE001 - an unreadable partial file only costs recomputation
            log.warning("ignoring unreadable %s (%s): estimating from the start", path.name, exc)
            done, count, seconds = {}, 0, 0.0
    while count < len(archs):
        t0 = time.time()
        part = {k: np.asarray(v) for k, v in estimate(archs[count: count + chunk]).items()}
        seconds += time.time() - t0
        done = part if not done else {k: np.concatenate([done[k], part[k]]) for k in part}
        count = min(len(archs), count + chunk)
        payload = {f"est_{k}": v for k, v in done.items()}

        def save(tmp: Path, payload=payload, count=count, seconds=seconds) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, archs=keys[:count], seconds=np.float64(seconds), **payload)

        atomic_write(path, save)
        write_json(status_path, {"state": "running", "phase": "estimation", "step": total_steps, "total_steps": total_steps,
                                 "estimated": count, "to_estimate": len(archs)})
        log.info("estimated %d/%d architectures", count, len(archs))
    return done, seconds


def _score(req, cfg, space, gt, archs, estimates, strategy, data, train_seconds, estimate_seconds) -> dict:
    score = np.asarray(estimates["score"], dtype=np.float64)
    if score.shape != (len(archs),):
        raise HarnessError(f"strategy {req.strategy!r} returned {score.shape} scores for {len(archs)} architectures")
    truth = gt.values(archs, cfg.eval.ground_truth)
    report = ranking_report(
        score, truth, gt.best(cfg.eval.ground_truth), [space.canonical_form(a) for a in archs], cfg.eval.bootstrap, req.seed
    )
    best = archs[int(np.argmax(score))]
    return {
        "strategy": req.strategy,
        "space": req.space,
        "preset": req.preset,
        "seed": req.seed,
        "ground_truth_column": cfg.eval.ground_truth,
        "estimator": cfg.eval.estimator if strategy.averaged_modules() else "strategy score",
        "bn_mode": cfg.shape.bn_mode,
        "total_steps": strategy.training_steps(),
        "steps_per_epoch": data.steps_per_epoch,
        "train_seconds": train_seconds,
        "estimate_seconds": estimate_seconds,
        "wall_seconds": train_seconds + estimate_seconds,
        "data": data.describe(),
        "predicted_best": {"arch": str(best), "index": gt.index_of(best)},
        "metrics": report,
        "strategy_summary": strategy.summary(),
        "git_commit": git_state().get("commit"),
    }


def probe_set(space, gt: GroundTruth, eval_cfg) -> list:
    """eval.probe_archs architectures from the probe half, so none computes the same function as a scored one:
    settings are chosen on their ground truth, never on the scored set's."""
    return probe_archs(space, gt, eval_cfg.probe_archs, eval_cfg.probe_seed, eval_cfg.split_seed)


def proxy_truth_extra(space, proxy, estimated: list) -> list:
    """The proxy truth's architectures that the scored and probe sets do not already hold."""
    if proxy is None:
        return []
    have = {str(a) for a in estimated}
    return [space.parse(a) for a in proxy.table["arch"] if a not in have]


def truth_decomposition(space, gt, cfg, proxy, archs: list, scores: np.ndarray, seed: int, path: Path) -> dict:
    """The three taus of the error decomposition on the proxy truth's architectures (in its table's order);
    writes their estimates and both truths to `path`."""
    from harness.scoring.proxytruth import PROXY_COLUMN, report

    row = {str(a): i for i, a in enumerate(archs)}
    chosen = [space.parse(a) for a in proxy.table["arch"]]
    estimate = np.asarray(scores, dtype=np.float64)[[row[str(a)] for a in chosen]]
    benchmark = gt.values(chosen, cfg.eval.ground_truth)
    frame = pd.DataFrame({"index": [gt.index_of(a) for a in chosen], "arch": [str(a) for a in chosen], "estimate": estimate,
                          "ground_truth": benchmark, "proxy_truth": proxy.values(chosen), "proxy_truth_table": proxy.name,
                          "proxy_truth_column": PROXY_COLUMN})
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.10g"))
    return report(proxy, chosen, estimate, benchmark, cfg.eval.bootstrap, seed)


def _split_rows(estimates: dict[str, Any], count: int) -> tuple[dict, dict]:
    arrays = {key: np.asarray(values) for key, values in estimates.items()}
    return {k: v[:count] for k, v in arrays.items()}, {k: v[count:] for k, v in arrays.items()}


def _probe_report(cfg, space, gt, probes, estimates, seed: int) -> dict:
    score = np.asarray(estimates["score"], dtype=np.float64)
    truth = gt.values(probes, cfg.eval.ground_truth)
    report = ranking_report(score, truth, gt.best(cfg.eval.ground_truth), [space.canonical_form(a) for a in probes], 0, seed)
    report["probe_seed"] = cfg.eval.probe_seed
    report["split_seed"] = cfg.eval.split_seed
    return report


def _write_predictions(path: Path, gt: GroundTruth, archs, estimates: dict[str, Any], column: str) -> None:
    frame = pd.DataFrame({"index": [gt.index_of(a) for a in archs], "arch": [str(a) for a in archs]})
    frame["estimate"] = np.asarray(estimates["score"], dtype=np.float64)
    for key, values in estimates.items():
        if key != "score":
            frame[key] = np.asarray(values)
    frame["ground_truth"] = gt.values(archs, column)
    frame["ground_truth_column"] = column
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.10g"))
