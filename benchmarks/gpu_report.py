"""Measures the harness on the current device within a wall-clock budget; writes results/gpu/<device>.json/.md.

Figures, in order of value (each one's own time is printed and recorded; the report is rewritten atomically
after every figure, so a run cut short still holds everything it finished):
  1. steps: ws, dinas, one split (fewshot) and one differentiable strategy (darts) each run a few hundred
     training steps at paper shape (C=16, N=5, 32x32, batch 64) without error; their ms/step, and the
     standalone network of the same path beside ws;
  2. estimation: one architecture at a time vs batched (architectures/s) and the projected time to score all
     15,625 architectures on 10,000 images;
  3. compute: the ws step under bf16 autocast / channels_last / both, and how well each variant's ranking of
     the same architectures on the same weights agrees with fp32 (Kendall tau) -- what decides [compute]'s
     GPU defaults;
  4. split memory: peak memory of NAS-LID's vs GM's split criterion at C=16, N=5, batch 128;
  5. paper-shape run: a `paper-shape` ws run shortened to fit the budget (its steps and number of
     architectures are stated) and its Kendall tau;
  6. projection: the projected full-protocol time (250 epochs of 50,000 images, all 15,625 architectures);
  7. peer: harness vs xautodl (benchmarks/peer_speed.py at paper shape), when xautodl is installed.
A figure that would not fit the remaining budget is skipped with its reason; one that overruns it is cut.
On a GPU machine: `make gpu-report` (docs/gpu.md). `--quick` shrinks every figure (smoke shape, a few steps
and architectures) so the whole report runs on a CPU in well under a minute: the CI test. Its numbers mean nothing.
    python benchmarks/gpu_report.py [--quick] [--budget SECONDS] [--out results/gpu] [--device auto]
"""
from __future__ import annotations

import time

PROCESS_STARTED = time.monotonic()  # the budget covers the imports too when run as a script

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.training import engine  # noqa: E402
from harness.config import ComputeConfig, build_options, resolve  # noqa: E402
from harness.data.paths import data_root  # noqa: E402
from harness.data.tensors import DataConfig, DeviceData  # noqa: E402
from harness.runs.envinfo import accelerator, device_name, git_state  # noqa: E402
from harness.runs.fileio import write_json, write_text  # noqa: E402
from harness.scoring.metrics import kendall_tau  # noqa: E402
from harness.training.evaluation import archs_per_pass, evaluate_archs, evaluate_many  # noqa: E402
from harness.registry import SPACES, STRATEGIES  # noqa: E402
from harness.runs.run import BenchRequest, bench, pick_device  # noqa: E402
from harness.strategies.base import StrategyContext  # noqa: E402

PAPER_STEPS = 195_500  # 250 epochs x (50,000 / 64 rounded down = 781 + the NB201 loader's last partial batch)
ALL_ARCHS = 15_625
PAPER_EVAL_IMAGES = 10_000
GOALS = {"paper_protocol_minutes": 15.0, "all_archs_on_10k_minutes": 2.0, "batched_speedup": 2.0}
# 8 minutes for the whole command (`make gpu-report`): the budget leaves room for the editable install.
DEFAULT_BUDGET_S = 450.0
STEP_STRATEGIES = ("ws", "dinas", "fewshot", "darts")  # weight sharing, its variant, one split, one differentiable
# Small criteria so a strategy's timed steps measure its training step, not a split or a warm-up.
STEP_OVERRIDES = {
    "fewshot": {"split_fractions": [0.9, 0.95]},
    "gm": {"repeats": 1},
    "naslid": {"repeats": 1},
}


class BudgetExhausted(Exception):
    """Raised by the alarm when the report's wall-clock budget runs out in the middle of a figure."""


class Unavailable(Exception):
    """A figure cannot be measured here (an optional package, or a figure it builds on, is missing): skipped."""


class Clock:
    def __init__(self, started: float, budget: float):
        self.started, self.budget = started, budget

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        """Seconds left for figures: the budget less a reserve for writing the report after the last one."""
        return self.budget - min(1.0, 0.05 * self.budget) - self.elapsed()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _seconds_per_call(fn, device: torch.device, calls: int, warmup: int, allowance: float = math.inf) -> tuple[float, int]:
    """Mean seconds per call after `warmup` calls, over `calls` calls or as many as fit in `allowance` seconds."""
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    done = 0
    while done < calls:
        fn()
        done += 1
        if done % 10 == 0 or done == calls:
            _sync(device)
            if time.perf_counter() - start > allowance:
                break
    _sync(device)
    return (time.perf_counter() - start) / done, done


class Setup:
    def __init__(self, quick: bool, device: torch.device, root):
        self.quick, self.device, self.root = quick, device, root
        self.space = SPACES.get("nb201")()
        if quick:
            self.shape_kw = {"channels": 4, "cells_per_stage": 1, "bn_mode": "batch"}
            self.resolution, self.batch = 8, 16
            self.steps, self.warmup, self.eval_images, self.agreement_archs = 3, 1, 64, 8
        else:
            self.shape_kw = {"channels": 16, "cells_per_stage": 5, "bn_mode": "batch"}
            self.resolution, self.batch = 32, 64
            self.steps, self.warmup, self.eval_images, self.agreement_archs = 300, 10, 1000, 200
        cfg = DataConfig(resolution=self.resolution, holdout_images=self.eval_images, eval_images=self.eval_images,
                         eval_batch_size=self.eval_images, batch_size=self.batch, train_images=None)
        self.data = DeviceData(cfg, device, root=root)
        self.shape = self.space.shape(num_classes=self.data.num_classes, **self.shape_kw)
        self.train = resolve("paper").train
        self.trained_ws = None  # figure 1's ws strategy, reused by figure 3's agreement

    def context(self, compute=ComputeConfig(), data=None) -> StrategyContext:
        total = 100_000  # far away: no schedule-driven event (split, warm-up end) falls into the timed steps
        return StrategyContext(self.space, self.shape, self.train, data or self.data, self.device, 0, total, False,
                               "accuracy", compute)

    def strategy(self, name: str, compute=ComputeConfig(), data=None):
        cls = STRATEGIES.get(name)
        return cls(self.context(compute, data), build_options(cls.Options, STEP_OVERRIDES.get(name, {}), name))

    def step_time(self, strategy, compute=ComputeConfig(), data=None, allowance: float = math.inf) -> dict:
        data = data or self.data
        state = {"step": 0, "last": None}

        def one():
            x, y = data.train_batch(0, state["step"])
            with engine.autocast(compute, self.device):
                state["last"] = strategy.train_step(state["step"], x, y)
            state["step"] += 1

        seconds, timed = _seconds_per_call(one, self.device, self.steps, self.warmup, allowance)
        loss = float(state["last"]) if state["last"] is not None else math.nan
        return {"step_ms": 1000 * seconds, "steps": timed + self.warmup, "last_loss": loss, "finite": math.isfinite(loss)}


def steps_figure(s: Setup, allowance: float) -> dict:
    """Figure 1: a few hundred steps of ws, dinas, one split and one differentiable strategy, and the standalone."""
    per = allowance / (len(STEP_STRATEGIES) + 1)
    out = {"shape": f"C={s.shape.channels} N={s.shape.cells_per_stage} {s.resolution}x{s.resolution}", "batch": s.batch,
           "strategies": {}}
    for name in STEP_STRATEGIES:
        started = time.perf_counter()
        try:
            strategy = s.strategy(name)
            out["strategies"][name] = s.step_time(strategy, allowance=per)
            if name == "ws":
                s.trained_ws = strategy
        except BudgetExhausted:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing strategy is the finding; the others still run
            out["strategies"][name] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
                                       "where": traceback.format_exc().strip().splitlines()[-3][:300]}
        out["strategies"][name]["seconds"] = time.perf_counter() - started
        print(f"  {name}: {out['strategies'][name]}", flush=True)
    arch = s.space.sample(np.random.default_rng(0))
    net = s.space.build_standalone(arch, s.shape).to(s.device)
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, nesterov=True, weight_decay=5e-4)
    state = {"step": 0}

    def standalone():
        x, y = s.data.train_batch(0, state["step"])
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        state["step"] += 1

    alone_s, _ = _seconds_per_call(standalone, s.device, s.steps, s.warmup, per)
    out["standalone_step_ms"] = 1000 * alone_s
    ws = out["strategies"].get("ws", {})
    if "step_ms" in ws:
        out["ws_over_standalone"] = ws["step_ms"] / out["standalone_step_ms"]
    return out


def estimation(s: Setup, allowance: float) -> dict:
    """Figure 2: one architecture at a time vs batched, and the projection to all 15,625 on 10,000 images."""
    net = (s.trained_ws or s.strategy("ws")).supernet.eval()
    batches = s.data.eval_batches()
    archs = s.space.all_archs()
    rng = np.random.default_rng(1)
    one_at_a_time = [archs[i] for i in rng.choice(len(archs), 4 if s.quick else 64, replace=False)]
    batched = [archs[i] for i in rng.choice(len(archs), 16 if s.quick else 2048, replace=False)]
    k = archs_per_pass(net, batches)
    t0 = time.perf_counter()
    evaluate_archs(net, one_at_a_time[:1], batches)
    _sync(s.device)
    first = time.perf_counter() - t0
    # Keep within the allowance: scale both sets down from the first architecture's cost (a warm-up too).
    fits = max(2, int(allowance / 3 / max(first, 1e-6)))
    one_at_a_time = one_at_a_time[:fits]
    batched = batched[:max(k, min(len(batched), fits * 8))]
    evaluate_many(net, batched[:k], batches, per_pass=k)  # warm-up: kernels, allocator
    _sync(s.device)
    t0 = time.perf_counter()
    evaluate_archs(net, one_at_a_time, batches)
    _sync(s.device)
    t1 = time.perf_counter()
    evaluate_many(net, batched, batches, per_pass=k)
    _sync(s.device)
    t2 = time.perf_counter()
    per_arch_rate, batched_rate = len(one_at_a_time) / (t1 - t0), len(batched) / (t2 - t1)
    images = sum(len(y) for _, y in batches)
    scale = PAPER_EVAL_IMAGES / images
    return {
        "images": images,
        "archs_per_pass": k,
        "one_at_a_time_archs": len(one_at_a_time),
        "batched_archs": len(batched),
        "per_arch_archs_per_s": per_arch_rate,
        "batched_archs_per_s": batched_rate,
        "batched_speedup": batched_rate / per_arch_rate,
        "note": f"batched timed on {len(batched)} random architectures: a full run's sharing is larger (all 15,625)",
        "all_archs_on_10k_projected_minutes_per_arch": ALL_ARCHS * scale / per_arch_rate / 60,
        "all_archs_on_10k_projected_minutes_batched": ALL_ARCHS * scale / batched_rate / 60,
    }


COMPUTE_VARIANTS = {
    "bf16": ComputeConfig(precision="bf16"),
    "channels_last": ComputeConfig(channels_last=True),
    "bf16+channels_last": ComputeConfig(precision="bf16", channels_last=True),
}


def compute_variants(s: Setup, allowance: float) -> dict:
    """Figure 3: the ws step under each [compute] variant, and its ranking's agreement with fp32 on the same weights."""
    per = allowance / (2 * len(COMPUTE_VARIANTS) + 1)
    nhwc = DeviceData(s.data.cfg, s.device, root=s.root)
    nhwc.use_channels_last()
    steps = {"fp32": s.step_time(s.strategy("ws"), allowance=per)["step_ms"]}
    for label, compute in COMPUTE_VARIANTS.items():
        data = nhwc if compute.channels_last else s.data
        steps[label] = s.step_time(s.strategy("ws", compute, data), compute, data, allowance=per)["step_ms"]
    net = (s.trained_ws or s.strategy("ws")).supernet.eval()
    archs = s.space.all_archs()
    chosen = [archs[i] for i in np.random.default_rng(2).choice(len(archs), s.agreement_archs, replace=False)]
    k = archs_per_pass(net, s.data.eval_batches())
    reference, _ = evaluate_many(net, chosen, s.data.eval_batches(), per_pass=k)
    agreement = {}
    for label, compute in COMPUTE_VARIANTS.items():
        data = nhwc if compute.channels_last else s.data
        model = net.to(memory_format=torch.channels_last) if compute.channels_last else net
        with engine.autocast(compute, s.device):
            acc, _ = evaluate_many(model, chosen, data.eval_batches(), per_pass=k)
        net.to(memory_format=torch.contiguous_format)
        agreement[label] = {"kendall_tau_vs_fp32": kendall_tau(acc, reference),
                            "max_abs_accuracy_diff": float(np.max(np.abs(acc - reference)))}
    return {"step_ms": steps, "speedup_vs_fp32": {k2: steps["fp32"] / v for k2, v in steps.items()},
            "agreement_archs": len(chosen), "agreement": agreement}


def split_memory(quick: bool, device: torch.device) -> dict:
    """Figure 4: peak memory of NAS-LID's vs GM's split criterion."""
    spec = importlib.util.spec_from_file_location("split_criterion_cost", REPO / "benchmarks" / "split_criterion_cost.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = argparse.Namespace(channels=4 if quick else 16, cells=1 if quick else 5, resolution=8 if quick else 32,
                              batches=1, k=5 if quick else 20, device=device.type)
    lid = module.measure(args, "naslid", 16 if quick else 128)
    gm = module.measure(args, "gm", 16 if quick else 128)
    return {
        "kind": lid["kind"],
        "naslid_peak_mib": lid["peak_bytes"] / 2**20,
        "gm_peak_mib": gm["peak_bytes"] / 2**20,
        "naslid_saving": 1 - lid["peak_bytes"] / max(1, gm["peak_bytes"]),
        "paper_claimed_saving": module.PAPER_SAVING,
        "batch": lid["batch"],
        "naslid_seconds": lid["seconds"],
        "gm_seconds": gm["seconds"],
    }


def paper_shape_run(quick: bool, device: torch.device, runs_dir: Path, report: dict, allowance: float) -> dict:
    """Figure 5: a `paper-shape` ws run, shortened to fit (its steps and architectures are stated), and its tau."""
    if quick:
        preset, steps, num_archs = "smoke", 4, 20
    else:
        preset = "paper-shape"
        ws = report["figures"].get("steps", {}).get("result", {}).get("strategies", {}).get("ws", {})
        est = report["figures"].get("estimation", {}).get("result", {})
        step_s = ws.get("step_ms", 100.0) / 1000
        # paper-shape scores on 2,017 images; figure 2 measured on its own image count.
        arch_s = 1 / est["batched_archs_per_s"] * 2017 / est["images"] if est else 0.05
        steps = int(min(17_750, max(50, 0.55 * allowance / step_s)))
        num_archs = int(min(ALL_ARCHS, max(20, 0.2 * allowance / arch_s)))
    overrides = (f"train.steps={steps}", f"eval.num_archs={num_archs}") + (("eval.bootstrap=1",) if quick else ())
    started = time.perf_counter()
    metrics = bench(BenchRequest(strategy="ws", preset=preset, runs_dir=runs_dir, progress=not quick, device=device.type,
                                 name=f"ws-{preset}-gpu-report", overrides=overrides))
    return {
        "preset": preset,
        "overrides": list(overrides),
        "wall_minutes": (time.perf_counter() - started) / 60,
        "train_minutes": metrics["train_seconds"] / 60,
        "estimate_minutes": metrics["estimate_seconds"] / 60,
        "num_archs": metrics["metrics"]["num_archs"],
        "kendall_tau": metrics["metrics"]["kendall_tau"],
        "total_steps": metrics["total_steps"],
        "seconds_per_step": metrics["train_seconds"] / max(1, metrics["total_steps"]),
    }


def projection(report: dict) -> dict:
    """Figure 6: the full protocol's projected time from the measured step and batched estimation rate."""
    figures = report["figures"]
    run = figures.get("paper_shape_run", {}).get("result")
    ws = figures.get("steps", {}).get("result", {}).get("strategies", {}).get("ws", {})
    est = figures.get("estimation", {}).get("result")
    if run and not report["quick"]:
        step_s, source = run["seconds_per_step"], "the shortened paper-shape run (engine overheads included)"
    elif "step_ms" in ws:
        step_s, source = ws["step_ms"] / 1000, "figure 1's ws step"
    else:
        raise Unavailable("needs the ws step time of figure 1 or 5, and neither finished")
    if not est:
        raise Unavailable("needs figure 2's batched estimation rate, which did not finish")
    train_min = PAPER_STEPS * step_s / 60
    est_min = est["all_archs_on_10k_projected_minutes_batched"]
    return {"paper_protocol_steps": PAPER_STEPS, "step_seconds": step_s, "step_source": source,
            "train_minutes": train_min, "estimate_all_archs_on_10k_minutes": est_min, "total_minutes": train_min + est_min}


def peer(quick: bool, device: torch.device, allowance: float) -> dict:
    """Figure 7: harness vs xautodl at paper shape (benchmarks/peer_speed.py), when its wheel or package is here."""
    spec = importlib.util.spec_from_file_location("peer_speed", REPO / "benchmarks" / "peer_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:  # fetch=False: the GPU machine has no network; without the wheel the figure is skipped
        module.import_xautodl(fetch=False)
    except LookupError as exc:
        raise Unavailable(str(exc).strip("'\"")) from None
    return module.measure("smoke" if quick else "paper", device, allowance, fetch=False,
                          echo=lambda line: print(f"  {line}", flush=True))


FIGURES = [
    # key, title, minimum seconds (quick, full), weight of the remaining budget it gets
    ("steps", "Training steps of ws, dinas, fewshot, darts", (1, 40), 100),
    ("estimation", "Estimation: one at a time vs batched", (1, 15), 40),
    ("compute", "bf16 / channels_last: step time and ranking agreement", (1, 30), 60),
    ("split_memory", "Split criterion memory: NAS-LID vs GM", (1, 10), 20),
    ("paper_shape_run", "Shortened paper-shape ws run", (2, 60), 150),
    ("projection", "Projected full-protocol time", (0, 0), 0),
    ("peer", "Peer: harness vs xautodl", (1, 20), 40),
]


def _run_figure(key: str, s: Setup, args, runs: Path, report: dict, allowance: float):
    if key == "steps":
        return steps_figure(s, allowance)
    if key == "estimation":
        return estimation(s, allowance)
    if key == "compute":
        return compute_variants(s, allowance)
    if key == "split_memory":
        return split_memory(args.quick, s.device)
    if key == "paper_shape_run":
        return paper_shape_run(args.quick, s.device, runs, report, allowance)
    if key == "projection":
        return projection(report)
    if key == "peer":
        return peer(args.quick, s.device, allowance)
    raise KeyError(key)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "device"


def _f(value, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def _figure_lines(key: str, r: dict) -> list[str]:
    if key == "steps":
        rows = []
        for name, v in r["strategies"].items():
            if "error" in v:
                rows.append(f"| {name} | FAILED: {v['error']} | | |")
            else:
                rows.append(f"| {name} | {v['step_ms']:.2f} | {v['steps']} | {'yes' if v['finite'] else 'NO'} |")
        return [f"{r['shape']}, batch {r['batch']}.", "", "| strategy | ms/step | steps run | finite loss |",
                "|---|---:|---:|---|", *rows, f"| standalone (same path as ws) | {r['standalone_step_ms']:.2f} | | |", "",
                f"ws / standalone: {_f(r.get('ws_over_standalone'))}x."]
    if key == "estimation":
        return [f"On {r['images']:,} images.", "", "| path | architectures/s | all 15,625 on 10,000 images (projected) |",
                "|---|---:|---:|",
                f"| one at a time ({r['one_at_a_time_archs']} archs) | {r['per_arch_archs_per_s']:.1f} | "
                f"{r['all_archs_on_10k_projected_minutes_per_arch']:.1f} min |",
                f"| batched (K={r['archs_per_pass']}, {r['batched_archs']} archs) | {r['batched_archs_per_s']:.1f} | "
                f"**{r['all_archs_on_10k_projected_minutes_batched']:.1f} min** |", "",
                f"Batched speedup {r['batched_speedup']:.2f}x ({r['note']}). Goal: all 15,625 on 10,000 images <= "
                f"{GOALS['all_archs_on_10k_minutes']:.0f} min."]
    if key == "compute":
        return ["| compute | ws ms/step | speedup vs fp32 | tau vs fp32 | max accuracy diff |", "|---|---:|---:|---:|---:|",
                *[f"| {k} | {v:.2f} | {r['speedup_vs_fp32'][k]:.2f} | "
                  f"{_f(r['agreement'].get(k, {}).get('kendall_tau_vs_fp32', 1.0 if k == 'fp32' else None), '.4f')} | "
                  f"{_f(r['agreement'].get(k, {}).get('max_abs_accuracy_diff', 0.0 if k == 'fp32' else None), '.4f')} |"
                  for k, v in r["step_ms"].items()], "",
                f"Agreement: the same {r['agreement_archs']} architectures on figure 1's ws weights."]
    if key == "split_memory":
        return [f"Batch {r['batch']} ({r['kind']}): NAS-LID {r['naslid_peak_mib']:.1f} MiB ({r['naslid_seconds']:.2f} s) vs "
                f"GM {r['gm_peak_mib']:.1f} MiB ({r['gm_seconds']:.2f} s): NAS-LID saves {100 * r['naslid_saving']:.0f}% "
                f"(paper claims up to {100 * r['paper_claimed_saving']:.0f}%)."]
    if key == "paper_shape_run":
        return [f"`{r['preset']}` with {', '.join(r['overrides'])}: {r['total_steps']:,} steps, {r['num_archs']:,} architectures "
                f"scored: wall {r['wall_minutes']:.1f} min (train {r['train_minutes']:.1f}, estimate {r['estimate_minutes']:.1f}), "
                f"Kendall tau {_f(r['kendall_tau'], '.4f')} on those {r['num_archs']:,} architectures."]
    if key == "projection":
        return [f"{r['paper_protocol_steps']:,} steps x {1000 * r['step_seconds']:.2f} ms ({r['step_source']}) = "
                f"{r['train_minutes']:.1f} min of training + {r['estimate_all_archs_on_10k_minutes']:.1f} min to score all "
                f"15,625 on 10,000 images = **{r['total_minutes']:.1f} min** (goal <= {GOALS['paper_protocol_minutes']:.0f} min "
                "of training on one H100; the published one-shot supernet took 6.8 h)."]
    if key == "peer":
        return [f"{r['shape']}: equivalence {r['equivalence']['verdict']} (max |logit diff| {r['equivalence']['max_abs_diff']:.2e}); "
                f"harness/xautodl: step {r['step_ratio']:.2f}x, estimation {r['estimation_ratio']:.2f}x "
                f"(> 1 = the harness is faster)."]
    return [f"`{r}`"]


def markdown(report: dict) -> str:
    d = report["device"]
    lines = [
        f"# GPU report: {d['name']}",
        "",
        f"{'QUICK mode (shrunk shapes; numbers mean nothing). ' if report['quick'] else ''}"
        f"torch {report['torch']}, CUDA {d['cuda_version']}, cuDNN {d['cudnn_version']}, driver {d['gpu_driver']}, "
        f"commit {report['git']['commit']}. Budget {report['budget_s']:.0f} s, used {report['elapsed_s']:.0f} s"
        f"{' (complete)' if report['complete'] else ' (in progress or cut short)'}.",
        "",
    ]
    for number, (key, title, _, _) in enumerate(FIGURES, 1):
        fig = report["figures"].get(key)
        if fig is None:
            continue
        lines += [f"## {number}. {title}", "", f"*{fig['status']}, {fig['seconds']:.1f} s*"
                  + (f": {fig['reason']}" if fig.get("reason") else ""), ""]
        if fig.get("result") is not None:
            lines += _figure_lines(key, fig["result"]) + [""]
    return "\n".join(lines)


def _on_alarm(signum, frame):
    raise BudgetExhausted()


def main(argv: list[str] | None = None, started: float | None = None) -> dict:
    started = time.monotonic() if started is None else started
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shrink everything (CPU, seconds): for CI")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S,
                        help=f"wall-clock seconds for the whole report, imports included (default {DEFAULT_BUDGET_S:.0f})")
    parser.add_argument("--out", type=Path, default=None,
                        help="report folder (default results/gpu; with --quick a temporary folder: its numbers mean nothing)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    if not args.budget > 0:
        parser.error(f"--budget {args.budget!r} must be a positive number of seconds")
    if args.out is None:
        args.out = Path(tempfile.gettempdir()) / "harness-gpu-report-quick" if args.quick else REPO / "results" / "gpu"
    clock = Clock(started, args.budget)
    device = pick_device(args.device)
    report = {"quick": args.quick, "torch": torch.__version__, "git": git_state(REPO), "budget_s": args.budget,
              "device": {"type": device.type, "name": device_name(device), **accelerator(device)},
              "goals": GOALS, "figures": {}, "complete": False, "elapsed_s": clock.elapsed()}
    stem = args.out / slug(report["device"]["name"] + ("-quick" if args.quick else ""))

    def save():
        report["elapsed_s"] = clock.elapsed()
        write_json(stem.with_suffix(".json"), report)
        write_text(stem.with_suffix(".md"), markdown(report))

    previous = signal.signal(signal.SIGALRM, _on_alarm)
    exhausted = False
    try:
        signal.setitimer(signal.ITIMER_REAL, max(clock.left(), 0.001))
        s = Setup(args.quick, device, data_root(args.data_dir))
        signal.setitimer(signal.ITIMER_REAL, 0)
    except BudgetExhausted:
        s, exhausted = None, True
    with tempfile.TemporaryDirectory() as runs:
        for index, (key, title, minimum, _) in enumerate(FIGURES):
            needs = minimum[0] if args.quick else minimum[1]
            left = clock.left()
            if needs > 0 and (exhausted or left < needs):  # a figure needing no time (arithmetic) always runs
                reason = ("the budget ran out before it started" if exhausted or left <= 0
                          else f"needs at least {needs} s, {left:.0f} s of the budget left")
                report["figures"][key] = {"status": "skipped", "seconds": 0.0, "reason": reason}
                print(f"[{index + 1}] {title}: skipped ({reason})", flush=True)
                save()
                continue
            weights = sum(w for _, _, _, w in FIGURES[index:]) or 1
            allowance = left * FIGURES[index][3] / weights
            figure_started = time.monotonic()
            print(f"[{index + 1}] {title} (allowance {allowance:.0f} s, {left:.0f} s left) ...", flush=True)
            entry = {"status": "done", "seconds": 0.0}
            try:
                if needs > 0:
                    signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))
                entry["result"] = _run_figure(key, s, args, Path(runs), report, allowance)
            except BudgetExhausted:
                exhausted = True
                entry.update(status="cut", reason="the budget ran out during this figure")
            except Unavailable as exc:  # an optional package, or a figure it builds on, is absent
                entry.update(status="skipped", reason=str(exc))
            except Exception as exc:  # noqa: BLE001 - a failing figure is a finding; the rest still run
                entry.update(status="failed", reason=f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
                             traceback=traceback.format_exc()[-2000:])
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            entry["seconds"] = time.monotonic() - figure_started
            report["figures"][key] = entry
            print(f"[{index + 1}] {title}: {entry['status']} in {entry['seconds']:.1f} s"
                  + (f" ({entry['reason']})" if entry.get("reason") else ""), flush=True)
            save()
    signal.signal(signal.SIGALRM, previous)
    report["complete"] = not exhausted and all(f["status"] == "done" for f in report["figures"].values())
    save()
    print(markdown(report))
    print(f"wrote {stem}.json and {stem}.md ({clock.elapsed():.1f} s of a {args.budget:.0f} s budget)")
    return report


if __name__ == "__main__":
    result = main(started=PROCESS_STARTED)
    sys.exit(1 if any(f["status"] == "failed" for f in result["figures"].values()) else 0)
