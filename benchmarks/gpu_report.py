"""Measures the harness on the current device, side by side in one run, and writes results/gpu/<device>.json/.md.

Figures (issue 13, section 3):
  1. ws step time at paper shape (C=16, N=5, 32x32, batch 64) vs the standalone network of the same path;
     steps/s; projected wall time of the paper protocol (250 epochs of 50,000 images = 195,500 steps);
     the same ws step under bf16 autocast and channels_last (what decides [compute]'s GPU defaults);
  2. every strategy's step cost relative to ws at paper shape (training-free ones have no step);
  3. estimation throughput, one architecture at a time vs batched (architectures/s on 1,000 images), and
     the projected time to score all 15,625 architectures on 10,000 images;
  4. peak memory of NAS-LID's vs GM's split criterion at C=16, N=5, batch 128 (benchmarks/split_criterion_cost.py);
  5. one complete `paper-shape` ws run: wall time and Kendall tau over all 15,625 architectures.
On a GPU machine: `make gpu-report` (installs this package with --no-deps into the preinstalled CUDA torch).
`--quick` shrinks every figure (smoke shape, a few steps and architectures) so the whole report runs on a CPU
in under a minute; CI runs it that way into a temporary directory. Its numbers mean nothing.
    python benchmarks/gpu_report.py [--quick] [--out results/gpu] [--device auto]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.training import engine  # noqa: E402
from harness.config import ComputeConfig, build_options, resolve  # noqa: E402
from harness.data.paths import data_root  # noqa: E402
from harness.data.tensors import DataConfig, DeviceData  # noqa: E402
from harness.runs.envinfo import accelerator, device_name, git_state  # noqa: E402
from harness.training.evaluation import archs_per_pass, evaluate_archs, evaluate_many  # noqa: E402
from harness.registry import SPACES, STRATEGIES  # noqa: E402
from harness.runs.run import BenchRequest, bench, pick_device  # noqa: E402
from harness.strategies.base import StrategyContext  # noqa: E402

PAPER_STEPS = 195_500  # 250 epochs x (50,000 / 64 rounded down = 781 + the NB201 loader's last partial batch)
ALL_ARCHS = 15_625
PAPER_EVAL_IMAGES = 10_000
GOALS = {"paper_protocol_minutes": 15.0, "all_archs_on_10k_minutes": 2.0, "batched_speedup": 2.0}
# Small criteria so a strategy's timed steps measure its training step, not a split or a warm-up.
STEP_OVERRIDES = {
    "fewshot": {"split_fractions": [0.9, 0.95]},
    "gm": {"repeats": 1},
    "naslid": {"repeats": 1},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _seconds_per_call(fn, device: torch.device, calls: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / calls


class Setup:
    def __init__(self, quick: bool, device: torch.device, root):
        self.quick, self.device, self.root = quick, device, root
        self.space = SPACES.get("nb201")()
        if quick:
            self.shape_kw = {"channels": 4, "cells_per_stage": 1, "bn_mode": "batch"}
            self.resolution, self.batch = 8, 16
            self.steps, self.warmup, self.eval_images = 3, 1, 64
        else:
            self.shape_kw = {"channels": 16, "cells_per_stage": 5, "bn_mode": "batch"}
            self.resolution, self.batch = 32, 64
            self.steps, self.warmup, self.eval_images = 50, 10, 1000
        cfg = DataConfig(resolution=self.resolution, holdout_images=self.eval_images, eval_images=self.eval_images,
                         eval_batch_size=self.eval_images, batch_size=self.batch, train_images=None)
        self.data = DeviceData(cfg, device, root=root)
        self.shape = self.space.shape(num_classes=self.data.num_classes, **self.shape_kw)
        self.train = resolve("paper").train

    def context(self, compute=ComputeConfig()) -> StrategyContext:
        total = 100_000  # far away: no schedule-driven event (split, warm-up end) falls into the timed steps
        return StrategyContext(self.space, self.shape, self.train, self.data, self.device, 0, total, False, "accuracy", compute)

    def strategy(self, name: str, compute=ComputeConfig()):
        cls = STRATEGIES.get(name)
        return cls(self.context(compute), build_options(cls.Options, STEP_OVERRIDES.get(name, {}), name))

    def step_time(self, strategy, compute=ComputeConfig()) -> float:
        state = {"step": 0}

        def one():
            x, y = self.data.train_batch(0, state["step"])
            with engine.autocast(compute, self.device):
                strategy.train_step(state["step"], x, y)
            state["step"] += 1

        return _seconds_per_call(one, self.device, self.steps, self.warmup)


def ws_vs_standalone(s: Setup) -> dict:
    ws = s.strategy("ws")
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

    ws_s = s.step_time(ws)
    alone_s = _seconds_per_call(standalone, s.device, s.steps, s.warmup)
    variants = {}
    for label, compute in (("bf16", ComputeConfig(precision="bf16")), ("channels_last", ComputeConfig(channels_last=True)),
                           ("bf16+channels_last", ComputeConfig(precision="bf16", channels_last=True))):
        data = s.data
        if compute.channels_last:
            s.data = DeviceData(data.cfg, s.device, root=s.root)
            s.data.use_channels_last()
        variants[label] = s.step_time(s.strategy("ws", compute), compute)
        s.data = data
    return {
        "ws_step_ms": 1000 * ws_s,
        "standalone_step_ms": 1000 * alone_s,
        "ws_over_standalone": ws_s / alone_s,
        "ws_steps_per_s": 1 / ws_s,
        "paper_protocol_steps": PAPER_STEPS,
        "paper_protocol_projected_minutes": PAPER_STEPS * ws_s / 60,
        "ws_step_ms_by_compute": {"fp32": 1000 * ws_s, **{k: 1000 * v for k, v in variants.items()}},
    }


def strategy_costs(s: Setup) -> dict:
    """ms per training step of every strategy, over ws's measured in the same loop."""
    costs = {}
    for name in STRATEGIES.names():
        strategy = s.strategy(name)
        try:
            seconds = s.step_time(strategy)
        except Exception as exc:  # training-free strategies have no step; report, never hide, anything else
            costs[name] = {"step_ms": None, "relative_to_ws": None, "note": str(exc).splitlines()[0][:160]}
            continue
        costs[name] = {"step_ms": 1000 * seconds}
    for cost in costs.values():
        cost.setdefault("relative_to_ws", None if cost["step_ms"] is None else cost["step_ms"] / costs["ws"]["step_ms"])
    return costs


def estimation(s: Setup) -> dict:
    net = s.strategy("ws").supernet.eval()
    batches = s.data.eval_batches()
    archs = s.space.all_archs()
    rng = np.random.default_rng(1)
    one_at_a_time = [archs[i] for i in rng.choice(len(archs), 4 if s.quick else 64, replace=False)]
    batched = [archs[i] for i in rng.choice(len(archs), 16 if s.quick else 2048, replace=False)]
    k = archs_per_pass(net, batches)
    evaluate_archs(net, one_at_a_time[:1], batches)
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
        "per_arch_archs_per_s": per_arch_rate,
        "batched_archs_per_s": batched_rate,
        "batched_speedup": batched_rate / per_arch_rate,
        "note": f"batched timed on {len(batched)} random architectures: a full run's sharing is larger (all 15,625)",
        "all_archs_on_10k_projected_minutes_per_arch": ALL_ARCHS * scale / per_arch_rate / 60,
        "all_archs_on_10k_projected_minutes_batched": ALL_ARCHS * scale / batched_rate / 60,
    }


def split_memory(quick: bool, device: torch.device) -> dict:
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


def paper_shape_run(quick: bool, device: torch.device, runs_dir: Path) -> dict:
    preset, overrides = ("smoke", ("train.steps=4", "eval.num_archs=20", "eval.bootstrap=1")) if quick else ("paper-shape", ())
    started = time.perf_counter()
    metrics = bench(BenchRequest(strategy="ws", preset=preset, runs_dir=runs_dir, progress=not quick, device=device.type,
                                 name=f"ws-{preset}-gpu-report", overrides=overrides))
    return {
        "preset": preset,
        "wall_minutes": (time.perf_counter() - started) / 60,
        "train_minutes": metrics["train_seconds"] / 60,
        "estimate_minutes": metrics["estimate_seconds"] / 60,
        "num_archs": metrics["metrics"]["num_archs"],
        "kendall_tau": metrics["metrics"]["kendall_tau"],
        "total_steps": metrics["total_steps"],
    }


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "device"


def markdown(report: dict) -> str:
    m, e, sm, run = report["ws_vs_standalone"], report["estimation"], report["split_memory"], report["paper_shape_run"]
    lines = [
        f"# GPU report: {report['device']['name']}",
        "",
        f"{'QUICK mode (shrunk shapes; numbers mean nothing). ' if report['quick'] else ''}"
        f"torch {report['torch']}, CUDA {report['device']['cuda_version']}, cuDNN {report['device']['cudnn_version']}, "
        f"driver {report['device']['gpu_driver']}, commit {report['git']['commit']}",
        "",
        f"## ws step at {report['shape']} (batch {report['batch']})",
        "",
        "| | ms/step | steps/s |",
        "|---|---:|---:|",
        f"| ws supernet | {m['ws_step_ms']:.2f} | {m['ws_steps_per_s']:.1f} |",
        f"| standalone (same path) | {m['standalone_step_ms']:.2f} | {1000 / m['standalone_step_ms']:.1f} |",
        "",
        f"ws / standalone: {m['ws_over_standalone']:.2f}x. Paper protocol ({m['paper_protocol_steps']:,} steps) projected: "
        f"**{m['paper_protocol_projected_minutes']:.1f} min** (goal <= {GOALS['paper_protocol_minutes']:.0f} min on one H100; "
        "the published one-shot supernet took 6.8 h).",
        "",
        "| compute | ws ms/step |",
        "|---|---:|",
        *[f"| {k} | {v:.2f} |" for k, v in m["ws_step_ms_by_compute"].items()],
        "",
        "## Step cost of every strategy relative to ws",
        "",
        "| strategy | ms/step | x ws |",
        "|---|---:|---:|",
        *[f"| {k} | {v['step_ms']:.2f} | {v['relative_to_ws']:.2f} |" if v["step_ms"] is not None else f"| {k} | - | training-free |"
          for k, v in report["strategy_costs"].items()],
        "",
        f"## Estimation on {e['images']:,} images",
        "",
        "| path | architectures/s | all 15,625 on 10,000 images (projected) |",
        "|---|---:|---:|",
        f"| one at a time | {e['per_arch_archs_per_s']:.1f} | {e['all_archs_on_10k_projected_minutes_per_arch']:.1f} min |",
        f"| batched (K={e['archs_per_pass']}) | {e['batched_archs_per_s']:.1f} | **{e['all_archs_on_10k_projected_minutes_batched']:.1f} min** |",
        "",
        f"Batched speedup {e['batched_speedup']:.2f}x ({e['note']}). Goal: all 15,625 on 10,000 images <= "
        f"{GOALS['all_archs_on_10k_minutes']:.0f} min.",
        "",
        f"## Split criterion memory (batch {sm['batch']}, {sm['kind']})",
        "",
        f"NAS-LID {sm['naslid_peak_mib']:.1f} MiB ({sm['naslid_seconds']:.2f} s) vs GM {sm['gm_peak_mib']:.1f} MiB "
        f"({sm['gm_seconds']:.2f} s): NAS-LID saves {100 * sm['naslid_saving']:.0f}% (paper claims up to {100 * sm['paper_claimed_saving']:.0f}%).",
        "",
        f"## Complete `{run['preset']}` ws run",
        "",
        f"{run['total_steps']:,} steps, {run['num_archs']:,} architectures scored: wall {run['wall_minutes']:.1f} min "
        f"(train {run['train_minutes']:.1f}, estimate {run['estimate_minutes']:.1f}), Kendall tau {run['kendall_tau']:.4f}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shrink everything (CPU, under a minute): for CI")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "gpu")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    root = data_root(args.data_dir)
    s = Setup(args.quick, device, root)
    with tempfile.TemporaryDirectory() as runs:
        report = {"quick": args.quick, "torch": torch.__version__, "git": git_state(REPO),
                  "device": {"type": device.type, "name": device_name(device), **accelerator(device)},
                  "shape": f"C={s.shape.channels} N={s.shape.cells_per_stage} {s.resolution}x{s.resolution}", "batch": s.batch,
                  "goals": GOALS}
        report["ws_vs_standalone"] = ws_vs_standalone(s)
        report["strategy_costs"] = strategy_costs(s)
        report["estimation"] = estimation(s)
        report["split_memory"] = split_memory(args.quick, device)
        report["paper_shape_run"] = paper_shape_run(args.quick, device, Path(runs))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / slug(report["device"]["name"] + ("-quick" if args.quick else ""))
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    print(f"wrote {stem}.json and {stem}.md")
    return report


if __name__ == "__main__":
    main()
