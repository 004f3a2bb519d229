"""Step time and memory of `dinas` (input and grad variants) relative to `ws`, measured side by side.

Time: all three strategies are built on the same data and shape (default: the `mini` preset) in one
process and take turns in rounds of `--steps` consecutive training steps (the order rotates every round),
so a load change on the shared machine hits all of them alike. Reported: median seconds per step over
rounds and the median over rounds of the per-round ratio to ws (the issue's target: <= 1.3x).

Memory: the bytes the projectors hold (P matrices / gradient bases) after the timed steps -- by then every
layer has been used, and their size no longer grows -- and, in a fresh process per strategy, how much the
resident set grows while training `--memory-steps` steps after the strategy and data are built (the
process's peak is set by loading the data, the same for all, so it would hide the difference).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dinas_overhead.py
"""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere in the checkout

from harness.config import build_options, resolve  # noqa: E402
from harness.data.tensors import DeviceData  # noqa: E402
from harness.registry import SPACES, STRATEGIES  # noqa: E402
from harness.strategies.base import StrategyContext  # noqa: E402

CONTENDERS = {
    "ws": ("ws", {}),
    "dinas-input": ("dinas", {"variant": "input"}),  # the default: apply = update, measurement every 50 steps
    "dinas-grad": ("dinas", {"variant": "grad"}),
    "dinas-input-gradient": ("dinas", {"variant": "input", "apply": "gradient"}),  # before issue 11
    "dinas-input-nomeasure": ("dinas", {"variant": "input", "measure_every": 0}),
    "ws-direction": ("ws", {"direction_control": True}),  # the direction control: dinas' projector + one side forward
}
DEFAULT = ("ws", "dinas-input", "dinas-grad")


def build(preset: str, label: str, data: DeviceData | None = None):
    cfg = resolve(preset)
    space = SPACES.get("nb201")()
    data = data or DeviceData(cfg.data, "cpu")
    shape = space.shape(num_classes=data.num_classes, **vars(cfg.shape))
    total = cfg.train.steps or cfg.train.epochs * data.steps_per_epoch
    ctx = StrategyContext(space, shape, cfg.train, data, torch.device("cpu"), 0, total, False)
    name, options = CONTENDERS[label]
    cls = STRATEGIES.get(name)
    return cls(ctx, build_options(cls.Options, options, name)), data


def resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def rss_growth_while_training(preset: str, label: str, steps: int, threads: int, queue) -> None:
    torch.set_num_threads(threads)
    strategy, data = build(preset, label)
    built = resident_bytes()
    for step in range(steps):
        strategy.train_step(step, *data.train_batch(0, step))
    queue.put(resident_bytes() - built)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20, help="consecutive steps per block")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps per strategy first")
    parser.add_argument("--memory-steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--contenders", nargs="+", default=list(DEFAULT), choices=list(CONTENDERS), help="ws is always included")
    parser.add_argument("--no-memory", action="store_true", help="skip the resident-set measurement")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = None
    strategies = {}
    for label in ["ws"] + [c for c in args.contenders if c != "ws"]:
        strategies[label], data = build(args.preset, label, data)
    step_of = dict.fromkeys(strategies, 0)

    def block(label: str, steps: int) -> float:
        strategy = strategies[label]
        start = time.perf_counter()
        for _ in range(steps):
            step = step_of[label]
            strategy.train_step(step, *data.train_batch(0, step))
            step_of[label] += 1
        return (time.perf_counter() - start) / steps

    for label in strategies:
        block(label, args.warmup)
    per_step: dict[str, list[float]] = {label: [] for label in strategies}
    labels = list(strategies)
    for r in range(args.rounds):
        order = labels[r % len(labels):] + labels[: r % len(labels)]
        for label in order:
            per_step[label].append(block(label, args.steps))

    print(f"preset {args.preset}: {args.rounds} rounds x {args.steps} steps, {args.threads} thread(s), order rotated per round")
    print(f"{'strategy':<22} {'ms/step (median)':>17} {'ratio to ws (median)':>21} {'projector MiB':>14}")
    for label in labels:
        ratios = [a / b for a, b in zip(per_step[label], per_step["ws"])]
        held = getattr(strategies[label], "projector_bytes", lambda: 0)() / 2**20
        print(f"{label:<22} {1e3 * statistics.median(per_step[label]):>17.2f} {statistics.median(ratios):>21.3f} {held:>14.2f}")

    if args.no_memory:
        return
    context = multiprocessing.get_context("spawn")
    rss = {}
    for label in labels:
        queue = context.Queue()
        worker = context.Process(target=rss_growth_while_training, args=(args.preset, label, args.memory_steps, args.threads, queue))
        worker.start()
        rss[label] = queue.get()
        worker.join()
    print(f"resident-set growth of a fresh process over {args.memory_steps} training steps (delta to ws):")
    for label in labels:
        print(f"  {label:<12} {rss[label] / 2**20:8.1f} MiB  ({(rss[label] - rss['ws']) / 2**20:+.1f} MiB)")


if __name__ == "__main__":
    main()
