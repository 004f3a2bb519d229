"""Peak memory and time of one split decision: NAS-LID's criterion vs gradient matching (GM-NAS), side by side.

One decision = every one of the 6 NB201 edges, every op forced in turn, `--batches` batches each -- what
`naslid` / `gm` compute when a supernet splits (harness/strategies/{naslid,gm}.py, the same functions).
Each measurement runs in a fresh subprocess so that neither inherits the other's allocations:
  CPU   peak RSS during the decision minus RSS just before it (the kernel's high-water mark is reset
        first through /proc/self/clear_refs, so loading the data does not count);
  CUDA  torch.cuda.max_memory_allocated during the decision minus memory allocated before it.
The NAS-LID paper (arXiv 2211.12759) reports up to 86% less GPU memory than gradient matching on NB201.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/split_criterion_cost.py
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PAPER_SAVING = 0.86


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def worker(args) -> dict:
    import numpy as np
    import torch

    from harness.data.tensors import DataConfig, DeviceData
    from harness.registry import SPACES
    from harness.strategies.split.gm import gradient_similarity
    from harness.strategies.split.naslid import lid_similarity

    torch.set_num_threads(1)
    torch.manual_seed(0)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else "cpu" if args.device == "auto" else args.device)
    space = SPACES.get("nb201")()
    batch = args.batch
    cfg = DataConfig(resolution=args.resolution, train_images=batch * args.batches, holdout_images=1, eval_images=1,
                     eval_batch_size=1, batch_size=batch)
    data = DeviceData(cfg, device)
    shape = space.shape(channels=args.channels, cells_per_stage=args.cells, num_classes=data.num_classes, bn_mode="batch")
    net = space.build_supernet(shape).to(device)
    batches = [data.train_batch(0, b) for b in range(args.batches)]
    edges = range(len(space.decisions()))
    paths = {e: [space.sample(np.random.default_rng([e, b])) for b in range(args.batches)] for e in edges}

    with torch.no_grad():  # library start-up costs (kernels, thread pools) are not the criterion's
        net(batches[0][0][:2], paths[0][0])

    def decision():
        for e in edges:
            ops = space.decisions()[e]
            if args.criterion == "gm":
                gradient_similarity(net, e, ops, batches, paths[e])
            else:
                lid_similarity(net, e, ops, batches, paths[e], k=args.k, layers="cells")

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        start = time.perf_counter()
        decision()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() - before
        kind = "CUDA peak allocated"
    else:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM (peak RSS) to the current RSS
        before = _status_kib("VmRSS")
        start = time.perf_counter()
        decision()
        seconds = time.perf_counter() - start
        peak = (_status_kib("VmHWM") - before) * 1024
        kind = "CPU peak RSS"
    return {"criterion": args.criterion, "batch": batch, "peak_bytes": peak, "seconds": seconds, "kind": kind,
            "device": str(device), "params": sum(p.numel() for p in net.parameters())}


def measure(args, criterion: str, batch: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", criterion, "--batch", str(batch), "--channels", str(args.channels),
           "--cells", str(args.cells), "--resolution", str(args.resolution), "--batches", str(args.batches),
           "--k", str(args.k), "--device", args.device]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", choices=["gm", "naslid"], help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=128, help=argparse.SUPPRESS)
    parser.add_argument("--channels", type=int, default=16, help="supernet width C (NB201: 16)")
    parser.add_argument("--cells", type=int, default=5, help="cells per stage N (NB201: 5)")
    parser.add_argument("--resolution", type=int, default=32, choices=[8, 16, 32])
    parser.add_argument("--batches", type=int, default=1, help="criterion batches per edge")
    parser.add_argument("--gm-batch", type=int, default=64, help="GM batch (the training batch)")
    parser.add_argument("--lid-batch", type=int, default=128, help="NAS-LID batch (paper: 128)")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = parser.parse_args()
    if args.worker:
        args.criterion = args.worker
        print(json.dumps(worker(args)))
        return 0

    runs = [("naslid", args.lid_batch), ("gm", args.gm_batch)]
    if args.gm_batch != args.lid_batch:
        runs.append(("gm", args.lid_batch))
    results = [measure(args, c, b) for c, b in runs]
    first = results[0]
    print(f"one split decision on NB201 C={args.channels} N={args.cells} {args.resolution}x{args.resolution}, "
          f"{first['params'] / 1e6:.2f} M supernet parameters, 6 edges x 5 ops x {args.batches} batch(es), "
          f"device {first['device']} ({first['kind']})")
    print(f"{'criterion':10} {'batch':>5} {'peak MiB':>9} {'seconds':>8}")
    for r in results:
        print(f"{r['criterion']:10} {r['batch']:>5} {r['peak_bytes'] / 2**20:>9.1f} {r['seconds']:>8.2f}")
    lid = results[0]
    for gm in results[1:]:
        ratio = lid["peak_bytes"] / max(1, gm["peak_bytes"])
        print(f"naslid(batch {lid['batch']}) / gm(batch {gm['batch']}): memory x{ratio:.2f} "
              f"(saving {100 * (1 - ratio):.0f}%; paper: up to {100 * PAPER_SAVING:.0f}%), "
              f"time x{lid['seconds'] / gm['seconds']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
