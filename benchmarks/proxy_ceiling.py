"""How well could any estimator do on this preset's proxy task? Standalone training vs. the supernet.

    .venv/bin/python benchmarks/proxy_ceiling.py --run results/runs/ws-nb201-mini-seed0 [--archs 24] [--epochs 30]

Trains `--archs` architectures of a finished run, each as its own standalone network, on exactly the
run's proxy task (shape, images, resolution, optimiser, held-out estimation images), and prints three
Kendall taus on the same architectures: standalone vs. ground truth (the ceiling of the proxy task),
supernet vs. ground truth, and supernet vs. standalone (the weight-sharing error alone). Architectures
are spread evenly over the run's ground-truth range, leaving out the ones that compute a constant
(ground truth 10 %), which every estimator ranks last for free.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats
import torch
import torch.nn.functional as F
from tqdm import tqdm

from harness.config import resolve
from harness.data.paths import data_root
from harness.data.tensors import DeviceData
from harness.training.evaluation import evaluate_archs
from harness.training.optim import clip_gradients, sgd_with_cosine
from harness.spaces.nb201.arch import Arch
from harness.spaces.nb201.network import NetworkShape, Standalone


def pick_archs(predictions: pd.DataFrame, count: int) -> pd.DataFrame:
    informative = predictions[predictions.ground_truth > 10.5].sort_values("ground_truth").reset_index(drop=True)
    rows = np.unique(np.linspace(0, len(informative) - 1, count).round().astype(int))
    return informative.iloc[rows].reset_index(drop=True)


def train_standalone(arch: Arch, shape: NetworkShape, data: DeviceData, cfg, steps: int, seed: int) -> tuple[float, float]:
    torch.manual_seed(seed)
    net = Standalone(arch, shape)
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer, scheduler = sgd_with_cosine(params, cfg.train, steps)
    net.train()
    for step in range(steps):
        images, labels = data.train_batch(seed, step)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(net(images), labels).backward()
        clip_gradients(params, cfg.train.grad_clip)
        optimizer.step()
        scheduler.step()
    net.eval()
    acc, loss = evaluate_archs(lambda x, _arch: net(x), [arch], data.eval_batches())
    return float(acc[0]), float(loss[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a finished single-path run directory (its predictions.csv)")
    parser.add_argument("--archs", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=30, help="standalone training epochs per architecture")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    run = Path(args.run)
    record = json.loads((run / "config.json").read_text())
    cfg = resolve(record["preset"], record.get("overrides", []))
    data = DeviceData(cfg.data, "cpu", root=data_root())
    shape = NetworkShape(cfg.shape.channels, cfg.shape.cells_per_stage, data.num_classes, cfg.shape.bn_mode)
    chosen = pick_archs(pd.read_csv(run / "predictions.csv"), args.archs)
    steps = args.epochs * data.steps_per_epoch

    started = time.time()
    results = []
    for arch in tqdm(chosen.arch, desc="standalone", unit="arch"):
        results.append(train_standalone(Arch.parse(arch), shape, data, cfg, steps, args.seed))
    chosen["standalone_acc"] = [acc for acc, _ in results]
    chosen["standalone_loss"] = [loss for _, loss in results]

    def tau(a, b) -> float:
        return float(scipy.stats.kendalltau(a, b)[0])

    print(f"{len(chosen)} architectures of {run.name}, standalone {args.epochs} epochs ({steps} steps) each, "
          f"{time.time() - started:.0f} s, torch threads {torch.get_num_threads()}")
    print(chosen[["arch", "ground_truth", "holdout_acc", "holdout_loss", "standalone_acc", "standalone_loss"]]
          .to_markdown(index=False, floatfmt=".3f"))
    print(f"Kendall tau  standalone acc vs ground truth  {tau(chosen.standalone_acc, chosen.ground_truth):.3f}"
          f"   (by -loss {tau(-chosen.standalone_loss, chosen.ground_truth):.3f})  <- proxy-task ceiling")
    print(f"Kendall tau  supernet acc vs ground truth    {tau(chosen.holdout_acc, chosen.ground_truth):.3f}"
          f"   (by -loss {tau(-chosen.holdout_loss, chosen.ground_truth):.3f})")
    print(f"Kendall tau  supernet acc vs standalone acc  {tau(chosen.holdout_acc, chosen.standalone_acc):.3f}"
          f"   (by -loss {tau(-chosen.holdout_loss, -chosen.standalone_loss):.3f})  <- weight-sharing error alone")


if __name__ == "__main__":
    main()
