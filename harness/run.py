"""One benchmark run: config -> data + space -> strategy training -> estimates -> metrics -> run directory.

Run directory files (all written atomically): config.json, status.json, checkpoint.pt, predictions.csv,
metrics.json, env.json, run.log. A run directory is never overwritten: an existing one is continued
with --resume (its config must match) or refused.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from harness import engine
from harness.archsets import disjoint_archs, scored_archs
from harness.config import Config, build_options, resolve, same_config
from harness.data.paths import data_root
from harness.data.tensors import DeviceData
from harness.envinfo import environment, git_state
from harness.errors import HarnessError
from harness.fileio import atomic_write, read_json, write_json
from harness.groundtruth import GroundTruth
from harness.metrics import ranking_report
from harness.registry import FEATURES, SPACES, STRATEGIES
from harness.strategies.base import StrategyContext

RUNS_DIR = Path("results/runs")


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


def _record(cfg: Config, req: BenchRequest, device: torch.device) -> dict:
    record = cfg.to_dict()
    record["strategy"] = {req.strategy: cfg.strategy.get(req.strategy, {})}
    return {
        "strategy": req.strategy,
        "space": req.space,
        "preset": req.preset,
        "seed": req.seed,
        "overrides": list(req.overrides),
        "device": str(device),
        "config": record,
    }


def _logger(run_dir: Path) -> logging.Logger:
    log = logging.getLogger(f"harness.run.{run_dir}")
    log.setLevel(logging.INFO)
    log.propagate = False
    if not log.handlers:
        handler = logging.FileHandler(run_dir / "run.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
    return log


def _close_logger(log: logging.Logger) -> None:
    for handler in list(log.handlers):
        handler.close()
        log.removeHandler(handler)


def bench(req: BenchRequest) -> dict:
    """Runs (or resumes) one benchmark and returns its metrics.json content."""
    strategy_cls = STRATEGIES.get(req.strategy)
    space = SPACES.get(req.space)()
    cfg = resolve(req.preset, req.overrides, space=req.space)
    options = build_options(strategy_cls.Options, cfg.strategy.get(req.strategy, {}), req.strategy)
    device = pick_device(req.device)
    if cfg.compute.threads:
        torch.set_num_threads(cfg.compute.threads)
    run_dir = Path(req.runs_dir) / run_name(req)
    record = _record(cfg, req, device)

    if (run_dir / "config.json").exists():
        if not req.resume:
            status = read_json(run_dir / "status.json").get("state", "unknown") if (run_dir / "status.json").exists() else "unknown"
            raise HarnessError(
                f"run directory {run_dir} already exists (status: {status}); pass --resume to continue it, or --name to start another"
            )
        previous = read_json(run_dir / "config.json")
        if not same_config(previous["config"], record["config"]):
            raise HarnessError(f"cannot resume {run_dir}: its config.json differs from this command's config; use --name for a new run")
        if torch.device(previous.get("device", "cpu")).type != device.type:
            raise HarnessError(
                f"cannot resume {run_dir} on {device.type}: it ran on {previous.get('device')} (batches and kernels differ); "
                f"pass --device {torch.device(previous.get('device', 'cpu')).type} or use --name for a new run"
            )
        if (run_dir / "metrics.json").exists():
            return read_json(run_dir / "metrics.json")
    elif req.resume:
        raise HarnessError(f"nothing to resume: {run_dir} does not exist")

    # Load everything that can fail on bad input before writing anything.
    root = data_root(req.data_dir)
    gt = space.load_ground_truth(root, cfg.eval.ground_truth)
    torch.manual_seed(req.seed)
    data = DeviceData(cfg.data, device, root=root)
    compute = engine.configure(cfg.compute, device, data)
    shape = space.shape(num_classes=data.num_classes, **vars(cfg.shape))
    total_steps = cfg.train.steps or cfg.train.epochs * data.steps_per_epoch
    ctx = StrategyContext(space, shape, cfg.train, data, device, req.seed, total_steps, req.progress, cfg.eval.estimate_by, cfg.compute)
    strategy = strategy_cls(ctx, options)
    hooks = [
        FEATURES.get(name)(opts, ctx, ground_truth=gt, eval_config=cfg.eval)
        for name, opts in sorted(cfg.features.items())
        if opts.get("enabled", False)
    ]

    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "config.json").exists():
        write_json(run_dir / "config.json", record)
    log = _logger(run_dir)
    status_path = run_dir / "status.json"
    ckpt_path = run_dir / "checkpoint.pt"
    started = time.time()
    try:
        start_step = 0
        elapsed_before = 0.0
        if ckpt_path.exists():
            state = torch.load(ckpt_path, map_location=device, weights_only=False)
            strategy.load_state_dict(state["strategy"])
            for hook, hook_state in zip(hooks, state.get("hooks", [])):
                hook.load_state_dict(hook_state)
            start_step = state["step"]
            elapsed_before = state.get("train_seconds", 0.0)
            log.info("resumed from checkpoint at step %d", start_step)

        def save_checkpoint(step: int) -> None:
            state = {
                "step": step,
                "strategy": strategy.state_dict(),
                "hooks": [h.state_dict() for h in hooks],
                "train_seconds": elapsed_before + time.time() - started,
            }
            atomic_write(ckpt_path, lambda tmp: torch.save(state, tmp))
            write_json(status_path, {"state": "running", "step": step, "total_steps": strategy.training_steps()})

        if start_step == 0:
            save_checkpoint(0)
        log.info("run %s: strategy=%s preset=%s seed=%d steps=%d device=%s", run_dir.name, req.strategy, req.preset, req.seed, strategy.training_steps(), device)
        engine.train(strategy, data, req.seed, start_step, save_checkpoint, cfg.train.checkpoint_every, hooks, req.progress, log.info,
                     cfg.train.check_finite_every, cfg.compute)
        train_seconds = elapsed_before + time.time() - started

        archs = scored_archs(space, gt, cfg.eval.num_archs, cfg.eval.arch_seed)
        probes = probe_set(space, gt, cfg.eval, archs)
        t0 = time.time()
        with engine.autocast(cfg.compute, device):
            together = strategy.estimate(archs + probes)  # one call: a strategy may batch its estimates
        estimate_seconds = time.time() - t0
        estimates, probe_estimates = _split_rows(together, len(archs))
        metrics = _score(req, cfg, space, gt, archs, estimates, strategy, data, train_seconds, estimate_seconds)
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
        write_json(status_path, {"state": "failed", "error": str(exc)})
        log.error("%s", exc)
        raise
    except BaseException as exc:
        write_json(status_path, {"state": "failed", "error": f"{type(exc).__name__}: {exc}"})
        log.exception("run failed")
        raise
    finally:
        _close_logger(log)


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


def probe_set(space, gt: GroundTruth, eval_cfg, scored: list) -> list:
    """eval.probe_archs architectures disjoint (up to isomorphism) from the scored set: settings are chosen on
    their ground truth, never on the scored set's."""
    if eval_cfg.probe_archs == 0:
        return []
    return disjoint_archs(space, gt, eval_cfg.probe_archs, eval_cfg.probe_seed, scored, what="eval.probe_archs")


def _split_rows(estimates: dict[str, Any], count: int) -> tuple[dict, dict]:
    arrays = {key: np.asarray(values) for key, values in estimates.items()}
    return {k: v[:count] for k, v in arrays.items()}, {k: v[count:] for k, v in arrays.items()}


def _probe_report(cfg, space, gt, probes, estimates, seed: int) -> dict:
    score = np.asarray(estimates["score"], dtype=np.float64)
    truth = gt.values(probes, cfg.eval.ground_truth)
    report = ranking_report(score, truth, gt.best(cfg.eval.ground_truth), [space.canonical_form(a) for a in probes], 0, seed)
    report["probe_seed"] = cfg.eval.probe_seed
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
