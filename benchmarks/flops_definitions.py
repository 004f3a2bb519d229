"""`flops` (NB201's FLOPs: every edge's op counted) vs `live_flops` (only ops whose result reaches the cell
output) as rankings of all 15,625 NB201 architectures at the benchmark's shape (C=16, N=5, 32x32).

    .venv/bin/python benchmarks/flops_definitions.py [--archs N]

Shapes only: networks are built on PyTorch's meta device, so no arithmetic runs. Both counts are sums over
the edges a network runs, so each is computed once per distinct set of running (edge, op) pairs -- the
operation counts for `flops`, the ops on edges whose result is read for `live_flops` -- and checked against
a direct count on --check architectures. Prints Kendall tau of each count against the benchmark's test
accuracies, and the count range.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy import stats
from tqdm import tqdm

from harness.scoring.groundtruth import COLUMNS, load_ground_truth
from harness.spaces.nb201.arch import EDGES, NONE, Arch
from harness.spaces.nb201.network import NetworkShape, Standalone, benchmark_flops, count_flops, live_edges


def running_ops(ops: tuple) -> tuple:
    """The ops Cell.forward runs (live edges whose input node is not all-zero), `none` elsewhere."""
    running, nodes = [], {0}
    for e in live_edges(ops):
        dst, src = EDGES[e]
        if src in nodes:
            running.append(e)
            nodes.add(dst)
    return tuple(ops[e] if e in running else NONE for e in range(len(ops)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=0, help="first N benchmark indices only (default: all)")
    parser.add_argument("--check", type=int, default=20, help="architectures also counted directly (default 20)")
    args = parser.parse_args()
    gt = load_ground_truth()
    n = args.archs or len(gt.table)
    started = time.time()
    cache: dict = {}

    def counted(kind: str, ops: tuple) -> float:
        if (kind, ops) not in cache:
            with torch.device("meta"):
                net = Standalone(Arch(ops), NetworkShape(16, 5, 10, "batch"))
            cache[(kind, ops)] = benchmark_flops(net, 32) if kind == "flops" else count_flops(net, 32)
        return cache[(kind, ops)]

    official, live = np.empty(n), np.empty(n)
    for i in tqdm(range(n), unit="arch", mininterval=5):
        ops = gt.arch_of(i).ops
        official[i] = counted("flops", tuple(sorted(ops)))
        live[i] = counted("live", running_ops(ops))
    rng = np.random.default_rng(0)
    for i in rng.choice(n, size=min(args.check, n), replace=False):
        with torch.device("meta"):
            net = Standalone(gt.arch_of(int(i)), NetworkShape(16, 5, 10, "batch"))
        assert benchmark_flops(net, 32) == official[i] and count_flops(net, 32) == live[i], gt.arch_of(int(i))
    print(f"{n} architectures in {time.time() - started:.0f} s ({len(cache)} distinct networks counted, "
          f"{min(args.check, n)} checked directly)")
    print(f"flops (NB201 definition)  {official.min() / 1e6:.2f} .. {official.max() / 1e6:.2f} M")
    print(f"live_flops                {live.min() / 1e6:.2f} .. {live.max() / 1e6:.2f} M;"
          f" below flops (a dead conv) on {(official - live > 1000).sum()} architectures")
    for column in COLUMNS:
        truth = gt.table[column].to_numpy()[:n]
        print(f"Kendall tau vs {column:20s} flops {stats.kendalltau(official, truth).statistic:.3f}"
              f"   live_flops {stats.kendalltau(live, truth).statistic:.3f}")


if __name__ == "__main__":
    main()
