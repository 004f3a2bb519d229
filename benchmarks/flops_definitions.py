"""`flops` (NB201's FLOPs: every edge's op counted) vs `live_flops` (only ops whose result reaches the cell
output) as rankings of all 15,625 NB201 architectures at the benchmark's shape (C=16, N=5, 32x32).

    .venv/bin/python benchmarks/flops_definitions.py [--archs N]

Shapes only: networks are built on PyTorch's meta device, so no arithmetic runs (minutes on one core).
Prints Kendall tau of each count against cifar10/cifar100/ImageNet16-120 test accuracy, and the count range.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy import stats
from tqdm import tqdm

from harness.scoring.groundtruth import COLUMNS, load_ground_truth
from harness.spaces.nb201.network import NetworkShape, Standalone, benchmark_flops, count_flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=0, help="first N benchmark indices only (default: all)")
    args = parser.parse_args()
    gt = load_ground_truth()
    n = args.archs or len(gt.table)
    started = time.time()
    official, live = np.empty(n), np.empty(n)
    for i in tqdm(range(n), unit="arch", mininterval=5):
        with torch.device("meta"):
            net = Standalone(gt.arch_of(i), NetworkShape(16, 5, 10, "batch"))
        official[i], live[i] = benchmark_flops(net, 32), count_flops(net, 32)
    print(f"{n} architectures in {time.time() - started:.0f} s")
    print(f"flops (NB201 definition)  {official.min() / 1e6:.2f} .. {official.max() / 1e6:.2f} M")
    print(f"live_flops                {live.min() / 1e6:.2f} .. {live.max() / 1e6:.2f} M;"
          f" differs from flops on {(official != live).sum()} architectures")
    for column in COLUMNS:
        truth = gt.table[column].to_numpy()[:n]
        print(f"Kendall tau vs {column:20s} flops {stats.kendalltau(official, truth).statistic:.3f}"
              f"   live_flops {stats.kendalltau(live, truth).statistic:.3f}")


if __name__ == "__main__":
    main()
