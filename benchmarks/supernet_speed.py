"""Supernet single-path step vs. the equivalent standalone network; training images/s; estimation archs/s.

    .venv/bin/python benchmarks/supernet_speed.py [--preset mini] [--steps 60]

Prints ratios measured side by side in one run (target: supernet/standalone step time <= 1.05x).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved  # noqa: E402

from harness.config import resolve  # noqa: E402
from harness.training.evaluation import evaluate_archs  # noqa: E402
from harness.spaces.nb201 import NB201Space  # noqa: E402
from harness.spaces.nb201.network import NB201Network, NetworkShape  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--steps", type=int, default=60, help="optimiser steps per timed repetition")
    parser.add_argument("--archs", type=int, default=20, help="architectures per estimation repetition")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    cfg = resolve(args.preset)
    device = torch.device(args.device)
    shape = NetworkShape(cfg.shape.channels, cfg.shape.cells_per_stage, 10, cfg.shape.bn_mode)
    space = NB201Space()
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(args.archs)]
    arch = archs[0]
    bs, res = cfg.data.batch_size, cfg.data.resolution
    x = torch.randn(bs, 3, res, res, device=device)
    y = torch.randint(0, 10, (bs,), device=device)

    torch.manual_seed(0)
    supernet = NB201Network(shape).to(device)
    # The standalone network of `arch` is the same class holding only its ops, with the same weights.
    standalone = NB201Network(shape, candidates=[(op,) for op in arch.ops]).to(device)
    standalone.load_state_dict(supernet.state_dict(), strict=False)
    opt_super = torch.optim.SGD(supernet.parameters(), lr=0.01, momentum=0.9)
    opt_alone = torch.optim.SGD(standalone.parameters(), lr=0.01, momentum=0.9)

    def steps(net, opt):
        def run():
            for _ in range(args.steps):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(x, arch), y).backward()
                opt.step()
        return run

    step_times = interleaved({"supernet": steps(supernet, opt_super), "standalone": steps(standalone, opt_alone)})
    per_step = {k: v / args.steps for k, v in step_times.items()}

    eval_x = torch.randn(cfg.data.eval_images, 3, res, res, device=device)
    eval_y = torch.randint(0, 10, (cfg.data.eval_images,), device=device)
    batches = [(eval_x[i : i + cfg.data.eval_batch_size], eval_y[i : i + cfg.data.eval_batch_size])
               for i in range(0, cfg.data.eval_images, cfg.data.eval_batch_size)]
    supernet.eval()
    est = interleaved({"estimate": lambda: evaluate_archs(supernet, archs, batches)}, repeats=3, warmup=1)["estimate"]

    print(f"preset {args.preset}: C={shape.channels} N={shape.cells_per_stage} {res}x{res}, batch {bs}, "
          f"device {device}, torch threads {torch.get_num_threads()}")
    print(f"  step time   supernet {per_step['supernet'] * 1e3:.2f} ms   standalone {per_step['standalone'] * 1e3:.2f} ms   "
          f"ratio {per_step['supernet'] / per_step['standalone']:.3f}x (target <= 1.05x)")
    print(f"  training    {bs / per_step['supernet']:.0f} images/s (supernet single path, forward+backward+SGD)")
    print(f"  estimation  {args.archs / est:.1f} architectures/s on {cfg.data.eval_images} held-out images")


if __name__ == "__main__":
    main()
