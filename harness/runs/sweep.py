"""Sweeps: a grid of ordinary runs (strategy x seed x preset x override set) executed as Ray tasks.

Every cell is validated before Ray starts. Complete runs are skipped (after checking that their recorded
identity matches the cell), interrupted ones resumed, and a failing run is reported with its one-line
error while the others go on. Ray runs locally unless `address` (or RAY_ADDRESS) names a cluster.

Results come back through the filesystem: each task writes its run directory itself, so the runs
directory must be on a filesystem shared by the driver and every worker (NFS, a cluster's shared home;
trivially true for a local Ray). Each task checks that it can see a marker file the driver wrote there
and fails with a one-line error naming its host if not, instead of writing runs the driver never sees.
"""
from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from harness.config import resolve
from harness.errors import HarnessError
from harness.runs.fileio import read_json, write_json
from harness.runs.signals import TermRaises

# After SIGTERM, how long cancelled tasks get to record themselves interrupted before the driver does it for them.
STOP_GRACE_SECONDS = 10.0


class SweepTerminated(KeyboardInterrupt):
    """SIGTERM to the sweep driver: its tasks are stopped and their runs recorded interrupted (exit 128+15)."""

    exit_code = 128 + signal.SIGTERM

MARKER_PREFIX = ".sweep-"


@dataclass(frozen=True)
class Cell:
    strategy: str
    space: str = "nb201"
    preset: str = "mini"
    seed: int = 0
    overrides: tuple[str, ...] = ()
    label: str = ""  # name of the override set: part of the run directory's name


@dataclass
class CellResult:
    cell: Cell
    run_dir: Path
    state: str  # complete | failed | interrupted | invalid (never started) | refused (record differs)
    error: str | None
    kendall_tau: float | None


# More seeds than this in one list is a typo (e.g. 0-99999), not an experiment.
MAX_SEEDS = 10_000


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """The one seed syntax of every command: '0-4' -> 0..4, '0,2,5' -> those, '3' -> [3]; ranges and lists combine
    ('0-2,7'); repeats are dropped. Seeds are 0..2**63-1, as for `bench --seed`."""
    import re

    from harness.runs.run import SEED_LIMIT

    accepted = f"accepted: N, N-M (M >= N) or a comma-separated mix, e.g. 0-2,7; seeds in 0..{SEED_LIMIT - 1}"
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise HarnessError(f"{flag}: {part!r} is not a seed in {text!r}; {accepted}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo or hi >= SEED_LIMIT:
            raise HarnessError(f"{flag}: {part!r} is not a seed range in {text!r}; {accepted}")
        if hi - lo + len(seeds) >= MAX_SEEDS:
            raise HarnessError(f"{flag} {text!r} names more than {MAX_SEEDS} seeds; {accepted}")
        seen = set(seeds)
        seeds.extend(s for s in range(lo, hi + 1) if s not in seen)
    return seeds


def threads_for(cpus_per_run: float) -> int:
    return max(1, int(cpus_per_run))


def cell_request(cell: Cell, runs_dir: Path, cpus_per_run: float = 1.0, data_dir: str | None = None,
                 plugins: tuple[str, ...] | None = None):
    """The BenchRequest of a cell. Its thread count follows its CPUs: added as an override (so it is part
    of the run's identity) only where the preset does not already pin that number. `plugins` (default: the
    --plugin modules loaded in this process) travel in the request: the worker imports them before the run."""
    from harness.plugins import load_plugins, loaded
    from harness.runs.run import BenchRequest

    plugins = load_plugins(loaded() if plugins is None else plugins)

    overrides = tuple(cell.overrides)
    threads = threads_for(cpus_per_run)
    try:
        pinned = resolve(cell.preset, overrides, space=cell.space).compute.threads
    except HarnessError:
        pinned = None  # reported by the validation that follows
    if pinned is not None and pinned != threads:
        overrides += (f"compute.threads={threads}",)
    name = f"{cell.strategy}-{cell.space}-{cell.preset}-{cell.label}-seed{cell.seed}" if cell.label else None
    return BenchRequest(
        strategy=cell.strategy, space=cell.space, preset=cell.preset, seed=cell.seed, overrides=overrides,
        runs_dir=Path(runs_dir).absolute(), name=name, progress=False, data_dir=data_dir, plugins=plugins,
    )


def _metrics_tau(run_dir: Path) -> float | None:
    try:
        return read_json(run_dir / "metrics.json")["metrics"]["kendall_tau"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def prepare(cells, runs_dir: Path, cpus_per_run: float, data_dir, plugins=None) -> tuple[list, list[CellResult | None]]:
    """Validates every cell before any work. Returns (requests, results): results[i] is already final for
    invalid cells, complete runs and runs whose record does not match; None where the cell must run."""
    from harness.runs.identity import check_identity, config_identity
    from harness.runs.run import _is_complete, plan, run_name

    requests, results, seen = [], [], {}
    for cell in cells:
        req = cell_request(cell, runs_dir, cpus_per_run, data_dir, plugins)
        try:
            p = plan(req)
        except HarnessError as exc:
            requests.append(req)
            results.append(CellResult(cell, Path(req.runs_dir) / run_name(req), "invalid", str(exc), None))
            continue
        if p.run_dir in seen:
            raise HarnessError(f"sweep cells {seen[p.run_dir]} and {cell} write the same run directory {p.run_dir}; give them distinct labels")
        seen[p.run_dir] = cell
        result = None
        if (p.run_dir / "config.json").exists():
            try:
                check_identity(p.run_dir, config_identity(p.req, p.cfg, p.options), p.strategy_cls.Options)
                if _is_complete(p.run_dir):
                    result = CellResult(cell, p.run_dir, "complete", None, _metrics_tau(p.run_dir))
                else:
                    req = replace(req, resume=True)
            except HarnessError as exc:
                result = CellResult(cell, p.run_dir, "refused", str(exc), None)
        requests.append(req)
        results.append(result)
    return requests, results


def _run_cell(req, marker: str | None) -> dict:
    """Body of one Ray task: one ordinary run; every outcome comes back as (state, one-line error, tau)."""
    from harness.runs.run import bench, run_name, run_state

    run_dir = Path(req.runs_dir) / run_name(req)
    if marker and not (Path(req.runs_dir) / marker).exists():
        return {"state": "failed", "tau": None, "error": (
            f"runs directory {req.runs_dir} is not shared with worker host {socket.gethostname()}; "
            f"sweeps need it on a filesystem that the driver and every worker see")}
    try:
        metrics = bench(req)
        return {"state": "complete", "error": None, "tau": metrics["metrics"]["kendall_tau"]}
    except HarnessError as exc:
        state = run_state(run_dir) if (run_dir / "status.json").exists() else "failed"
        return {"state": "interrupted" if state == "interrupted" else "failed", "error": str(exc), "tau": None}
    except KeyboardInterrupt:
        return {"state": "interrupted", "error": "interrupted; rerun the sweep to resume", "tau": None}
    except Exception as exc:  # noqa: BLE001 - one broken run must not stop the sweep
        return {"state": "failed", "error": f"{type(exc).__name__}: {exc}".splitlines()[0], "tau": None}


def _start_ray(address: str | None, data_dir: str | None, num_cpus: int | None = None):
    try:
        import ray
    except ImportError:
        raise HarnessError("sweeps run on Ray, which is not installed; accepted: `pip install ray==2.60.0` (or `make setup`)") from None

    if ray.is_initialized():
        return ray, False
    address = address or os.environ.get("RAY_ADDRESS") or None
    env = {"OMP_NUM_THREADS": "1"}
    if data_dir or os.environ.get("HARNESS_DATA"):
        env["HARNESS_DATA"] = str(Path(data_dir or os.environ["HARNESS_DATA"]).absolute())
    if address is None:
        # Local workers import this checkout; a cluster's workers need harness installed.
        # Plug-ins (--plugin modules, distributions with harness entry points) too, wherever the driver found them.
        from harness.plugins import search_paths

        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(filter(None, [package_root, *search_paths(), os.environ.get("PYTHONPATH")])))
    local = {"num_cpus": num_cpus} if address is None and num_cpus else {}
    # Ray's notice about its authentication token concerns whoever runs a cluster, not a sweep's user.
    logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env},
                 configure_logging=False, **local)
    except Exception as exc:  # noqa: BLE001 - Ray's own start-up failures (timeouts, unreachable address) are environmental
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarnessError(f"could not start {where}: {first}; no run was started, rerun the same command "
                           f"(an overloaded machine can delay Ray's start past its own timeout)") from None
    return ray, True


def _local_resources() -> dict[str, float]:
    """What a local Ray would offer: the machine's CPUs and CUDA devices."""
    import torch

    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def check_resources(available: dict, cpus_per_run: float, gpus_per_run: float, where: str) -> None:
    """A task asking for more than the cluster has would wait forever: refuse it, naming what there is."""
    for name, flag, wanted in (("CPU", "--cpus-per-run", cpus_per_run), ("GPU", "--gpus-per-run", gpus_per_run)):
        have = float(available.get(name, 0.0))
        if wanted > have:
            raise HarnessError(f"{flag} {wanted:g} asks for more {name}s than {where} has ({have:g} {name}s; "
                               f"resources: {', '.join(f'{k} {v:g}' for k, v in sorted(available.items()) if k in ('CPU', 'GPU'))}); "
                               f"accepted: {flag} up to {have:g}" + (" (0 runs on CPUs)" if name == "GPU" else ""))


def run_cells(cells, runs_dir, *, address=None, cpus_per_run=1.0, gpus_per_run=0.0, progress=True, data_dir=None,
              plugins=None) -> list[CellResult]:
    """Runs every cell not already complete; returns one result per cell, in order. `plugins`: modules every
    run imports first (default: the --plugin modules loaded in this process)."""
    cells = list(cells)
    if not cells:
        raise HarnessError("empty sweep: no cells to run; accepted: at least one strategy, seed and preset")
    if not cpus_per_run > 0:
        raise HarnessError(f"--cpus-per-run {cpus_per_run!r} must be > 0")
    if gpus_per_run < 0:
        raise HarnessError(f"--gpus-per-run {gpus_per_run!r} must be >= 0 (fractions share a GPU between runs)")
    runs_dir = Path(runs_dir).absolute()
    if not (address or os.environ.get("RAY_ADDRESS")):
        check_resources(_local_resources(), cpus_per_run, gpus_per_run, "this machine")
    requests, results = prepare(cells, runs_dir, cpus_per_run, data_dir, plugins)
    todo = [i for i, r in enumerate(results) if r is None]
    if todo:
        _execute(cells, requests, results, todo, runs_dir, address, cpus_per_run, gpus_per_run, progress, data_dir)
    return results


def _execute(cells, requests, results, todo, runs_dir, address, cpus_per_run, gpus_per_run, progress, data_dir) -> None:
    from tqdm import tqdm

    from harness.runs.run import run_name

    runs_dir.mkdir(parents=True, exist_ok=True)
    marker = f"{MARKER_PREFIX}{uuid.uuid4().hex}"
    (runs_dir / marker).write_text("driver marker: workers check that they see the driver's runs directory\n")
    ray, started = _start_ray(address, data_dir)
    pending = {}
    try:
        if address or os.environ.get("RAY_ADDRESS"):
            check_resources(ray.cluster_resources(), cpus_per_run, gpus_per_run, "the Ray cluster")
        task = ray.remote(_run_cell).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)
        with TermRaises(SweepTerminated):  # installed after ray.init, which sets its own handler
            pending = {task.remote(requests[i], marker): i for i in todo}
            with tqdm(total=len(todo), desc="sweep", unit="run", disable=not progress) as bar:
                while pending:
                    done, _ = ray.wait(list(pending), num_returns=1)
                    for ref in done:
                        i = pending.pop(ref)
                        out = ray.get(ref)
                        req = requests[i]
                        results[i] = CellResult(cells[i], Path(req.runs_dir) / run_name(req), out["state"], out["error"], out["tau"])
                        bar.update(1)
    except KeyboardInterrupt:
        _stop(ray, pending, [Path(requests[i].runs_dir) / run_name(requests[i]) for i in pending.values()])
        raise
    finally:
        (runs_dir / marker).unlink(missing_ok=True)
        if started:
            ray.shutdown()


def _stop(ray, pending: dict, run_dirs: list[Path]) -> None:
    """Cancels the running tasks (each run records itself interrupted at its next step), waits a little for them,
    then records as interrupted every run still marked running whose lock nobody holds any more."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN) if main else None  # a second SIGTERM must not cut this short
    try:
        try:
            for ref in pending:
                ray.cancel(ref)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            waiting = list(pending)
            while waiting and time.monotonic() < deadline:
                _done, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=max(0.0, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 - Ray itself may be going down; the runs are still recorded below
            pass
        for run_dir in run_dirs:
            mark_interrupted(run_dir, "interrupted: the sweep was stopped; rerun the same sweep command to resume")
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def mark_interrupted(run_dir: Path, why: str) -> bool:
    """Records a run left `running` by a task that was stopped as interrupted, unless a process still holds it."""
    from harness.runs.lock import LOCK_FILE
    from harness.runs.run import run_state

    if run_state(run_dir) != "running":
        return False
    try:
        with open(run_dir / LOCK_FILE, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # its process is still alive and will record its own end
            status = read_json(run_dir / "status.json")
            write_json(run_dir / "status.json", {**status, "state": "interrupted", "error": why,
                                                 "ended": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            fcntl.flock(handle, fcntl.LOCK_UN)
        return True
    except (OSError, ValueError, AttributeError):
        return False


def summary_table(results: list[CellResult]) -> str:
    from tabulate import tabulate

    rows = [
        [r.run_dir.name, r.cell.strategy, r.cell.preset, r.cell.seed, r.cell.label or "-", r.state,
         "n/a" if r.kendall_tau is None else f"{r.kendall_tau:.4f}", r.error or ""]
        for r in results
    ]
    return tabulate(rows, headers=["run", "strategy", "preset", "seed", "set", "state", "tau", "error"], tablefmt="github")
