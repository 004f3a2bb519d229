"""`truth build`: a standalone-trained table of a preset's architectures, resumable, on the sweep engine.

Layout (under --out-dir, default results/truth):
  <table>.csv          arch, index, acc_seed<s>, loss_seed<s> per seed, acc_mean, loss_mean, seeds
  <table>.json         provenance: config, data digests, git commit, library versions, selection, commands
  .work/<table>-<digest>/<index>-seed<s>.json   one finished (architecture, seed) each, written atomically

<table> is `<space>-<preset>`, plus `-<hash>` when --epochs or --set change the preset's task. The work
folder is named by the digest of everything that changes the numbers (space, shape, data, train, compute,
data files, device kind): a rerun with the same settings finds its finished pairs and trains only the rest;
a table is refused if its recorded digest differs from the request's.
"""
from __future__ import annotations

import hashlib
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import HarnessError
from harness.runs.fileio import atomic_write, read_json, write_json

TRUTH_DIR = Path("results/truth")
WORK = ".work"
ORDER_SEED = 2020  # the truth's architectures are the first N of the scored set permuted with this seed
SECTIONS = ("shape", "data", "train", "compute")


@dataclass
class TruthRequest:
    preset: str
    space: str = "nb201"
    archs: int | None = None  # None: every architecture of the preset's scored set
    seeds: tuple[int, ...] = (0,)
    epochs: int | None = None
    overrides: tuple[str, ...] = ()
    out_dir: Path = TRUTH_DIR
    executor: str = "ray"  # ray | local
    address: str | None = None
    chunk: int = 4
    data_dir: str | None = None
    progress: bool = True
    command: str = field(default_factory=lambda: "python -m harness " + shlex.join(sys.argv[1:]))


@dataclass
class TruthPlan:
    req: TruthRequest
    space: Any
    cfg: Any
    overrides: tuple[str, ...]
    table: str
    identity: dict
    archs: list
    indices: list[int]
    work_dir: Path

    def pairs(self) -> list[tuple[int, int]]:
        """(position in self.archs, seed), seed-major: every architecture gets seed 0 before any gets seed 1."""
        return [(i, s) for s in self.req.seeds for i in range(len(self.archs))]

    def result_path(self, position: int, seed: int) -> Path:
        return self.work_dir / f"{self.indices[position]}-seed{seed}.json"


def table_name(space: str, preset: str, overrides: tuple[str, ...]) -> str:
    name = f"{space}-{preset}"
    if overrides:
        name += "-" + hashlib.sha256("\n".join(sorted(overrides)).encode()).hexdigest()[:8]
    return name


def truth_archs(space, gt, eval_cfg, count: int | None) -> list:
    """The first `count` architectures of the preset's scored set, in a fixed permuted order (so a larger
    table contains every smaller one). Drawn from the scored side only: probes never meet the proxy truth."""
    from harness.scoring.archsets import scored_archs

    scored = scored_archs(space, gt, eval_cfg.num_archs, eval_cfg.arch_seed, eval_cfg.split_seed)
    if count is None:
        count = len(scored)
    if count < 2 or count > len(scored):
        raise HarnessError(f"--archs {count} must be between 2 and the preset's {len(scored)} scored architectures "
                           f"(eval.num_archs); accepted: --archs 2..{len(scored)}")
    order = np.random.default_rng([ORDER_SEED, eval_cfg.arch_seed]).permutation(len(scored))
    return [scored[int(i)] for i in order[:count]]


def plan(req: TruthRequest) -> TruthPlan:
    """Checks everything before any work: names, numbers, data and ground truth present, table consistent."""
    from harness.config import resolve
    from harness.data.paths import data_root
    from harness.registry import SPACES
    from harness.runs.identity import _jsonable, device_kind, digest_of, file_digest, _relative
    import torch

    if req.executor not in ("ray", "local"):
        raise HarnessError(f"--executor {req.executor!r}; accepted: ray, local")
    if not req.seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in req.seeds):
        raise HarnessError(f"--seeds {list(req.seeds)!r}; accepted: distinct integers >= 0, e.g. 0,1")
    if len(set(req.seeds)) != len(req.seeds):
        raise HarnessError(f"--seeds {list(req.seeds)!r} repeats a seed; accepted: distinct integers >= 0")
    if req.chunk < 1:
        raise HarnessError(f"--chunk {req.chunk!r} must be >= 1 (architecture x seed pairs per task)")
    overrides = tuple(req.overrides)
    if req.epochs is not None:
        if req.epochs < 1:
            raise HarnessError(f"--epochs {req.epochs!r} must be >= 1")
        overrides += (f"train.epochs={req.epochs}", "train.steps=0")
    space = SPACES.get(req.space)()
    cfg = resolve(req.preset, overrides, space=req.space)
    if space.ground_truth_dataset(cfg.eval.ground_truth) != cfg.data.dataset:
        raise HarnessError(f"preset {req.preset!r} trains on {cfg.data.dataset} but scores against {cfg.eval.ground_truth}; "
                           f"a proxy truth is built only where the benchmark truth measures the same data set")
    root = data_root(req.data_dir)
    gt = space.load_ground_truth(root, cfg.eval.ground_truth)
    from harness.data.cifar import load_split

    files = list(load_split(cfg.data.dataset, "train", root).files)
    if cfg.data.holdout_test:
        files += list(load_split(cfg.data.dataset, "test", root).files)
    archs = truth_archs(space, gt, cfg.eval, req.archs)
    config = _jsonable({k: v for k, v in cfg.to_dict().items() if k in SECTIONS})
    identity = {
        "space": req.space,
        "config": config,
        "data_files": {_relative(f, root): file_digest(f) for f in files},
        "device_kind": device_kind(torch.device("cpu")),
        "init": "SeedSequence([seed, 20, sha256(arch string)]); batches and augmentation of (seed, step) as in every run",
    }
    identity["digest"] = digest_of(identity)
    name = table_name(req.space, req.preset, tuple(req.overrides) + ((f"train.epochs={req.epochs}",) if req.epochs else ()))
    if req.epochs is not None and req.epochs == resolve(req.preset, tuple(req.overrides), space=req.space).train.epochs:
        name = table_name(req.space, req.preset, tuple(req.overrides))
    out_dir = Path(req.out_dir)
    provenance = out_dir / f"{name}.json"
    if provenance.exists():
        try:
            recorded = read_json(provenance)["identity"]["digest"]
        except (OSError, ValueError, KeyError, TypeError):
            raise HarnessError(f"{provenance} is not a truth provenance record; move it away or choose another --out-dir") from None
        if recorded != identity["digest"]:
            raise HarnessError(f"table {out_dir / name}.csv was built with other settings (digest {recorded}, this request "
                               f"{identity['digest']}); move it away or choose another --out-dir")
    _check_writable(out_dir)
    return TruthPlan(req, space, cfg, overrides, name, identity, archs, [gt.index_of(a) for a in archs],
                     out_dir / WORK / f"{name}-{identity['digest']}")


def _check_writable(out_dir: Path) -> None:
    existing = out_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise HarnessError(f"--out-dir {out_dir} is not writable ({existing}); accepted: a writable directory")


def finished(p: TruthPlan, position: int, seed: int) -> bool:
    path = p.result_path(position, seed)
    try:
        record = read_json(path)
        return record["digest"] == p.identity["digest"] and record["arch"] == str(p.archs[position])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def train_pairs(space_name: str, preset: str, overrides: tuple[str, ...], digest: str, jobs: list[dict], data_dir: str | None) -> int:
    """Body of one task: trains each (arch, seed) of `jobs` and writes its result file atomically. Returns
    how many it trained (a file already there is not trained again)."""
    import torch

    from harness.config import resolve
    from harness.data.paths import data_root
    from harness.data.tensors import DeviceData
    from harness.registry import SPACES
    from harness.strategies.base import StrategyContext
    from harness.truth.standalone import train_and_measure

    space = SPACES.get(space_name)()
    cfg = resolve(preset, overrides, space=space_name)
    if cfg.compute.threads:
        torch.set_num_threads(cfg.compute.threads)
    device = torch.device("cpu")
    data = DeviceData(cfg.data, device, root=data_root(data_dir))
    shape = space.shape(num_classes=data.num_classes, **vars(cfg.shape))
    steps = cfg.train.steps or cfg.train.epochs * data.steps_per_epoch
    trained = 0
    for job in jobs:
        path = Path(job["path"])
        if path.exists():
            continue
        arch = space.parse(job["arch"])
        ctx = StrategyContext(space, shape, cfg.train, data, device, job["seed"], steps, False, compute=cfg.compute)
        started = time.time()
        acc, loss = train_and_measure(ctx, arch)
        record = {"arch": job["arch"], "index": job["index"], "seed": job["seed"], "accuracy": acc, "loss": loss,
                  "steps": steps, "seconds": time.time() - started, "threads": torch.get_num_threads(), "digest": digest}
        write_json(path, record)
        trained += 1
    return trained


def build(req: TruthRequest) -> dict:
    """Trains what is missing, then writes the table and its provenance. Returns a summary."""
    p = plan(req)
    todo = [(i, s) for i, s in p.pairs() if not finished(p, i, s)]
    p.work_dir.mkdir(parents=True, exist_ok=True)
    jobs = [{"arch": str(p.archs[i]), "index": p.indices[i], "seed": s, "path": str(p.result_path(i, s).absolute())} for i, s in todo]
    for job in jobs:  # a stale file of other settings is replaced, never mixed in
        Path(job["path"]).unlink(missing_ok=True)
    started = time.time()
    if jobs:
        chunks = [jobs[k: k + req.chunk] for k in range(0, len(jobs), req.chunk)]
        args = (req.space, req.preset, p.overrides, p.identity["digest"])
        if req.executor == "local":
            _run_local(chunks, args, req)
        else:
            _run_ray(chunks, args, req)
    table, records = collect(p)
    write_table(p, table, records)
    return {"table": Path(req.out_dir) / f"{p.table}.csv", "trained": len(jobs), "pairs": len(p.pairs()), "seconds": time.time() - started, "archs": len(p.archs)}


def _run_local(chunks, args, req) -> None:
    from tqdm import tqdm

    with tqdm(total=sum(map(len, chunks)), desc="truth", unit="arch", disable=not req.progress) as bar:
        for chunk in chunks:
            train_pairs(*args, chunk, req.data_dir)
            bar.update(len(chunk))


def _run_ray(chunks, args, req) -> None:
    from tqdm import tqdm

    from harness.runs.sweep import _start_ray

    ray, started = _start_ray(req.address, req.data_dir)
    try:
        task = ray.remote(train_pairs).options(num_cpus=1, max_retries=0)
        pending = {task.remote(*args, chunk, req.data_dir): len(chunk) for chunk in chunks}
        errors = []
        with tqdm(total=sum(map(len, chunks)), desc="truth", unit="arch", disable=not req.progress) as bar:
            try:
                while pending:
                    done, _ = ray.wait(list(pending), num_returns=1)
                    for ref in done:
                        size = pending.pop(ref)
                        try:
                            ray.get(ref)
                        except Exception as exc:  # noqa: BLE001 - reported below, the other tasks go on
                            errors.append(str(getattr(exc, "cause", exc)).strip().splitlines()[-1])
                        bar.update(size)
            except KeyboardInterrupt:
                for ref in pending:
                    ray.cancel(ref)
                raise
        if errors:
            raise HarnessError(f"{len(errors)} truth task(s) failed (first: {errors[0]}); finished ones are kept, rerun to retry")
    finally:
        if started:
            ray.shutdown()


def collect(p: TruthPlan) -> tuple[pd.DataFrame, list[dict]]:
    """The table: every finished (architecture, seed) of these settings -- this request's, earlier builds'
    (the work folder, and the existing table of the same digest) -- one acc/loss column pair per seed, means."""
    for i, s in p.pairs():
        if not finished(p, i, s):
            raise HarnessError(f"truth result for {p.archs[i]} seed {s} is missing after the build; rerun to finish it")
    values: dict[tuple[int, int], tuple[str, float, float]] = {}
    old_path = Path(p.req.out_dir) / f"{p.table}.csv"
    if old_path.exists():
        old = pd.read_csv(old_path)
        for col in old.columns:
            if col.startswith("acc_seed"):
                seed = int(col[len("acc_seed"):])
                for arch, index, acc, loss in zip(old["arch"], old["index"], old[col], old[f"loss_seed{seed}"]):
                    if np.isfinite(acc):
                        values[(int(index), seed)] = (arch, float(acc), float(loss))
    records = []
    for path in sorted(p.work_dir.glob("*-seed*.json")):
        try:
            record = read_json(path)
        except (OSError, ValueError):
            continue
        if record.get("digest") == p.identity["digest"]:
            values[(int(record["index"]), int(record["seed"]))] = (record["arch"], record["accuracy"], record["loss"])
            records.append(record)
    indices = sorted({i for i, _ in values})
    seeds = sorted({s for _, s in values})
    arch_of = {i: a for (i, _), (a, _, _) in values.items()}
    frame = pd.DataFrame({"arch": [arch_of[i] for i in indices], "index": indices})
    for seed in seeds:
        frame[f"acc_seed{seed}"] = [values.get((i, seed), (None, math.nan, math.nan))[1] for i in indices]
        frame[f"loss_seed{seed}"] = [values.get((i, seed), (None, math.nan, math.nan))[2] for i in indices]
    frame["acc_mean"] = frame[[f"acc_seed{s}" for s in seeds]].mean(axis=1)
    frame["loss_mean"] = frame[[f"loss_seed{s}" for s in seeds]].mean(axis=1)
    frame["seeds"] = frame[[f"acc_seed{s}" for s in seeds]].notna().sum(axis=1)
    return frame, records


def write_table(p: TruthPlan, table: pd.DataFrame, records: list[dict]) -> None:
    from harness.runs.envinfo import environment, git_state
    import torch

    out_dir = Path(p.req.out_dir)
    csv_path = out_dir / f"{p.table}.csv"
    json_path = out_dir / f"{p.table}.json"
    old = read_json(json_path) if json_path.exists() else {}
    commands = list(dict.fromkeys([*old.get("commands", []), p.req.command]))
    env = environment(torch.device("cpu"), [])
    seconds = [r["seconds"] for r in records]
    provenance = {
        "table": p.table,
        "space": p.req.space,
        "preset": p.req.preset,
        "overrides": list(p.overrides),
        "identity": p.identity,
        "selection": {
            "rule": f"the preset's scored set (eval.num_archs={p.cfg.eval.num_archs}, eval.arch_seed={p.cfg.eval.arch_seed}, "
                    f"eval.split_seed={p.cfg.eval.split_seed}) "
                    f"permuted with numpy default_rng([{ORDER_SEED}, arch_seed]), first N",
            "archs": int(len(table)),
            "seeds_per_arch": {str(k): int(v) for k, v in table["seeds"].value_counts().sort_index().items()},
        },
        "estimation_images": p.cfg.data.eval_images,
        "ground_truth_column": p.cfg.eval.ground_truth,
        "train_steps": records[0]["steps"] if records else None,
        "seconds_per_arch": {"mean": float(np.mean(seconds)) if seconds else None, "threads": records[0]["threads"] if records else None},
        "git": git_state(),
        "packages": env["packages"],
        "python": env["python"],
        "platform": env["platform"],
        "commands": commands,
        "rebuild": commands,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write(csv_path, lambda tmp: table.to_csv(tmp, index=False, float_format="%.6f"))
    write_json(json_path, provenance)
