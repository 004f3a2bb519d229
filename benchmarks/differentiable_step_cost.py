"""Training-step time of darts / darts2 / gdas / idarts relative to ws, measured side by side in one process.

Every strategy is built on the same data and shape (default: the `mini` preset) and the strategies take
turns in rounds (the order rotates each round), so a load change on a shared machine hits all of them.
A block is `--steps` consecutive steps (a multiple of idarts' inner_steps, so its architecture steps are
counted in proportion). Reported: median seconds per step over rounds, and the median over rounds of the
per-round ratio to ws.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/differentiable_step_cost.py
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere in the checkout

from harness.config import build_options, resolve
from harness.data.paths import data_root
from harness.data.tensors import DeviceData
from harness.registry import SPACES, STRATEGIES
from harness.strategies.base import StrategyContext

STRATEGY_NAMES = ("ws", "darts", "darts2", "gdas", "idarts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="steps per block (keep a multiple of idarts inner_steps)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cfg = resolve(args.preset)
    space = SPACES.get("nb201")()
    device = torch.device("cpu")
    data = DeviceData(cfg.data, device, root=data_root())
    shape = space.shape(num_classes=data.num_classes, **vars(cfg.shape))
    total = cfg.train.steps or cfg.train.epochs * data.steps_per_epoch
    strategies = {}
    for name in STRATEGY_NAMES:
        cls = STRATEGIES.get(name)
        torch.manual_seed(0)
        ctx = StrategyContext(space, shape, cfg.train, data, device, 0, total, progress=False)
        strategies[name] = cls(ctx, build_options(cls.Options, cfg.strategy.get(name, {}), name))

    def block(name: str, first_step: int) -> float:
        strategy = strategies[name]
        start = time.perf_counter()
        for step in range(first_step, first_step + args.steps):
            strategy.train_step(step, *data.train_batch(0, step))
        return (time.perf_counter() - start) / args.steps

    for name in STRATEGY_NAMES:  # warm-up: allocator, autograd graph caches
        block(name, 0)
    per_step: dict[str, list[float]] = {name: [] for name in STRATEGY_NAMES}
    for r in range(args.rounds):
        order = STRATEGY_NAMES[r % len(STRATEGY_NAMES):] + STRATEGY_NAMES[: r % len(STRATEGY_NAMES)]
        for name in order:
            per_step[name].append(block(name, (r + 1) * args.steps))

    print(f"preset {args.preset}: batch {cfg.data.batch_size}, {cfg.data.resolution}px, channels {cfg.shape.channels}, "
          f"cells/stage {cfg.shape.cells_per_stage}; {args.rounds} interleaved rounds of {args.steps} steps, {args.threads} thread(s)")
    print(f"{'strategy':<8} {'ms/step (median)':>17} {'x ws (median of per-round ratios)':>34}")
    for name in STRATEGY_NAMES:
        ratios = [t / w for t, w in zip(per_step[name], per_step["ws"])]
        print(f"{name:<8} {1000 * statistics.median(per_step[name]):>17.1f} {statistics.median(ratios):>34.2f}")


if __name__ == "__main__":
    main()
