"""One-architecture-at-a-time vs batched estimation on the `mini` shape, side by side in one process.

What a mini run estimates: its 700 architectures (eval.num_archs=500 + eval.probe_archs=200) on its 2,017
held-out images, CPU, one thread (as the preset pins), one freshly initialised supernet. The batched path
scores all 700, as a run does: it orders them so that neighbours share the ops fed by a cell's input and
computes shared values once, so its speed depends on the whole set, not on a sample. One architecture at a
time costs the same per architecture whatever the set, so it is timed on a random sample of `--sample`
of the 700 (the full set would take minutes); the two are compared as architectures per second, and the
sample's estimates are checked against the batched ones. The machine may be shared: both timings are
taken back to back in one run, and their ratio is what is printed last:
    batched/per-arch speedup: X.XXx
Usage: python benchmarks/estimate_speed.py [--sample 48] [--per-pass 0] [--preset mini] [--device cpu]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from harness.scoring.archsets import probe_archs, scored_archs
from harness.config import resolve
from harness.data.paths import data_root
from harness.data.tensors import DeviceData
from harness.training.evaluation import archs_per_pass, evaluate_archs, evaluate_many
from harness.scoring.groundtruth import load_ground_truth
from harness.registry import SPACES


def _timed(fn, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--sample", type=int, default=48, help="architectures timed one at a time")
    parser.add_argument("--per-pass", type=int, default=0, help="architectures per batched forward (0: the memory rule)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    cfg = resolve(args.preset)
    if cfg.compute.threads:
        torch.set_num_threads(cfg.compute.threads)
    device = torch.device(args.device)
    root = data_root(None)
    data = DeviceData(cfg.data, device, root=root)
    gt = load_ground_truth(root=root)
    space = SPACES.get("nb201")()
    archs = scored_archs(space, gt, cfg.eval.num_archs, cfg.eval.arch_seed, cfg.eval.split_seed)
    if cfg.eval.probe_archs:
        archs = archs + probe_archs(space, gt, cfg.eval.probe_archs, cfg.eval.probe_seed, cfg.eval.split_seed)
    sample = sorted(np.random.default_rng(11).choice(len(archs), size=min(args.sample, len(archs)), replace=False).tolist())
    shape = space.shape(num_classes=data.num_classes, **vars(cfg.shape))
    torch.manual_seed(0)
    net = space.build_supernet(shape).to(device).eval()
    batches = data.eval_batches()
    images = sum(len(y) for _, y in batches)
    k = archs_per_pass(net, batches, args.per_pass)
    print(f"{args.preset}: C={shape.channels} N={shape.cells_per_stage} {cfg.data.resolution}x{cfg.data.resolution}, "
          f"{images} images, {torch.get_num_threads()} thread(s), device {device}")

    (acc1, loss1), per_arch_s = _timed(lambda: evaluate_archs(net, [archs[i] for i in sample], batches), device)
    (acc2, loss2), batched_s = _timed(lambda: evaluate_many(net, archs, batches, per_pass=k), device)
    per_arch_rate, batched_rate = len(sample) / per_arch_s, len(archs) / batched_s
    print(f"per-arch: {len(sample)} architectures in {per_arch_s:.1f} s, {per_arch_rate:.2f} architectures/s")
    print(f"batched (K={k}): {len(archs)} architectures in {batched_s:.1f} s, {batched_rate:.2f} architectures/s")
    print(f"on the {len(sample)} timed one at a time: max |accuracy difference| {np.abs(acc1 - acc2[sample]).max():.4f} %, "
          f"max |loss difference| {np.abs(loss1 - loss2[sample]).max():.2e}")
    speedup = batched_rate / per_arch_rate
    print(f"batched/per-arch speedup: {speedup:.2f}x")
    return speedup


if __name__ == "__main__":
    main()
