"""One-architecture-at-a-time vs batched estimation on the `mini` shape, side by side in one process.

Both paths score the same architectures with the same freshly initialised supernet on mini's 2,017
held-out images (CPU, one thread, as the preset pins). Prints the agreement of the two results and, as
its last line, `batched/per-arch speedup: X.XXx`. The machine may be shared: the ratio is measured
interleaved (per-arch, batched, per-arch, ...) and the best of each is kept, which cancels slow spells.
    python benchmarks/estimate_speed.py [--archs 64] [--repeats 2] [--per-pass 0] [--preset mini]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from harness.config import resolve
from harness.data.paths import data_root
from harness.data.tensors import DeviceData
from harness.evaluation import archs_per_pass, evaluate_archs, evaluate_many
from harness.registry import SPACES


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--archs", type=int, default=64, help="architectures scored by each path")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--per-pass", type=int, default=0, help="architectures per batched forward (0: from free memory)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    cfg = resolve(args.preset)
    torch.set_num_threads(cfg.compute.threads or torch.get_num_threads())
    device = torch.device(args.device)
    data = DeviceData(cfg.data, device, root=data_root(None))
    space = SPACES.get("nb201")()
    shape = space.shape(num_classes=data.num_classes, **vars(cfg.shape))
    torch.manual_seed(0)
    net = space.build_supernet(shape).to(device).eval()
    archs = [space.sample(np.random.default_rng([7, i])) for i in range(args.archs)]
    batches = data.eval_batches()
    images = sum(len(y) for _, y in batches)
    k = archs_per_pass(net, batches, args.per_pass)
    print(f"{args.preset}: C={shape.channels} N={shape.cells_per_stage} {cfg.data.resolution}x{cfg.data.resolution}, "
          f"{args.archs} architectures x {images} images, {torch.get_num_threads()} thread(s), K={k} per batched pass")

    best = {"per-arch": float("inf"), "batched": float("inf")}
    results = {}
    for _ in range(args.repeats):
        for name, run in (("per-arch", lambda: evaluate_archs(net, archs, batches)),
                          ("batched", lambda: evaluate_many(net, archs, batches, per_pass=k))):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            results[name] = run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - t0)
    (acc1, loss1), (acc2, loss2) = results["per-arch"], results["batched"]
    for name, seconds in best.items():
        print(f"{name}: {seconds:.2f} s, {args.archs / seconds:.1f} architectures/s")
    print(f"max |accuracy difference| {np.abs(acc1 - acc2).max():.4f} %, max |loss difference| {np.abs(loss1 - loss2).max():.2e}")
    speedup = best["per-arch"] / best["batched"]
    print(f"batched/per-arch speedup: {speedup:.2f}x")
    return speedup


if __name__ == "__main__":
    main()
