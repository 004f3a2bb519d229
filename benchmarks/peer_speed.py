"""The harness vs AutoDL-Projects' RSPS supernet (`xautodl==1.0.0`): same weights, same paths, same batches.

First an equivalence check: the harness's NB201 supernet and xautodl's `TinyNetworkRANDOM` (the random single-path
supernet of NB201's RSPS baseline), holding the same weights, must compute the same logits for the same single
paths, including paths with `none` and dead edges. Then, side by side in one run:
  * training step: xautodl's RSPS step (forward the cached path, cross-entropy, backward, clip 5, SGD) vs the
    harness's `ws` training step, on the same paths and batches;
  * estimation: xautodl scoring one architecture at a time (AutoDL's `valid_func` loop) vs the harness's
    batched estimation (evaluate_many), on the same architectures, images and weights.
Both networks use the harness's weight-sharing BN convention (batch statistics, no running statistics): xautodl's
stem, reduction and head BNs would otherwise keep running statistics, which changes its logits, not its cost.

xautodl's metadata pins numpy<=1.19.5, which this project's numpy cannot satisfy, so pip cannot install it as a
dependency. The modules used here need only torch: the wheel is fetched once with `pip download --no-deps` into
.cache/peer/ (or given with --xautodl-wheel) and imported from the wheel itself, unless xautodl is installed.
    python benchmarks/peer_speed.py [--shape mini|paper|smoke] [--device cpu|cuda|auto] [--fetch-only]
Last line: `harness/xautodl: step X.XXx, estimation Y.YYx` (> 1: the harness is faster).
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _timing import interleaved  # noqa: E402
from harness.config import ComputeConfig, build_options, resolve  # noqa: E402
from harness.data.paths import data_root  # noqa: E402
from harness.data.tensors import DataConfig, DeviceData  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.registry import SPACES, STRATEGIES  # noqa: E402
from harness.runs.run import pick_device  # noqa: E402
from harness.spaces.nb201.arch import EDGES, OPS, Arch  # noqa: E402
from harness.spaces.nb201.network import Cell, ResBlock  # noqa: E402
from harness.strategies.base import StrategyContext  # noqa: E402
from harness.training.evaluation import archs_per_pass, evaluate_many  # noqa: E402

XAUTODL = "xautodl==1.0.0"
WHEEL_DIR = REPO / ".cache" / "peer"
# shape: (preset for the schedule, channels, cells per stage, resolution, eval images, timed steps, estimated archs)
SHAPES = {
    "smoke": ("smoke", 4, 1, 8, 64, 2, 4),
    "mini": ("mini", 8, 1, 16, 1000, 10, 24),
    "paper": ("paper", 16, 5, 32, 1000, 10, 24),
}
# Paths for the equivalence check: all five ops, `none` everywhere, dead edges (a node fed only by `none`), random.
CHECK_PATHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|avg_pool_3x3~2|",
    "|none~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|none~2|",
]


def wheel_path(given: str | None, fetch: bool = True) -> Path | None:
    if given:
        return Path(given)
    found = sorted(WHEEL_DIR.glob("xautodl-1.0.0-*.whl"))
    if found or not fetch:
        return found[0] if found else None
    WHEEL_DIR.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", XAUTODL, "-d", str(WHEEL_DIR)],
                          capture_output=True, text=True)
    found = sorted(WHEEL_DIR.glob("xautodl-1.0.0-*.whl"))
    if done.returncode or not found:
        raise HarnessError(f"could not fetch {XAUTODL} ({(done.stderr or 'no wheel').strip().splitlines()[-1]}); "
                           f"accepted: a wheel given with --xautodl-wheel, or `pip install --no-deps {XAUTODL}`")
    return found[0]


def import_xautodl(wheel: str | None = None, fetch: bool = True):
    """(TinyNetworkRANDOM, Structure), from an installed xautodl or from its wheel."""
    if importlib.util.find_spec("xautodl") is None:
        path = wheel_path(wheel, fetch)
        if path is None:
            raise LookupError(f"xautodl is not installed and no wheel is in {WHEEL_DIR}; run "
                              "`python benchmarks/peer_speed.py --fetch-only` where a package index is reachable")
        if not path.is_file():
            raise HarnessError(f"--xautodl-wheel {str(path)!r} is not a file; accepted: the path of {XAUTODL}'s wheel")
        sys.path.insert(0, str(path))
    from xautodl.models.cell_searchs.genotypes import Structure
    from xautodl.models.cell_searchs.search_model_random import TinyNetworkRANDOM

    return TinyNetworkRANDOM, Structure


def to_structure(arch: Arch, Structure):
    nodes = []
    for dst in range(1, 4):
        nodes.append(tuple((OPS[arch.ops[e]], src) for e, (d, src) in enumerate(EDGES) if d == dst))
    return Structure(nodes)


def batch_statistics_only(net: torch.nn.Module) -> None:
    """The harness's weight-sharing BN: normalise with the batch's statistics, keep none (train and eval alike)."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.track_running_stats = False
            m.running_mean = m.running_var = m.num_batches_tracked = None


def _weighted(module: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Linear))]


def copy_weights(harness_net, peer_net) -> int:
    """Copies every harness weight into the xautodl module that plays the same part; returns the tensors copied."""
    pairs = [(harness_net.stem, peer_net.stem)]
    for layer, cell in zip(harness_net.layers, peer_net.cells, strict=True):
        if isinstance(layer, ResBlock):
            pairs += [(layer.conv_a, cell.conv_a), (layer.conv_b, cell.conv_b), (layer.shortcut, cell.downsample)]
            continue
        assert isinstance(layer, Cell)
        for e, (dst, src) in enumerate(EDGES):
            for name, op in layer.edges[e].items():
                pairs.append((op, cell.edges[f"{dst}<-{src}"][peer_net.op_names.index(name)]))
    pairs += [(harness_net.head, peer_net.lastact), (harness_net.classifier, peer_net.classifier)]
    copied = 0
    with torch.no_grad():
        for ours, theirs in pairs:
            a, b = _weighted(ours), _weighted(theirs)
            if len(a) != len(b):
                raise RuntimeError(f"{type(ours).__name__} vs {type(theirs).__name__}: {len(a)} vs {len(b)} weighted modules")
            for m, n in zip(a, b):
                for pa, pb in ((m.weight, n.weight), (getattr(m, "bias", None), getattr(n, "bias", None))):
                    if pa is None and pb is not None and isinstance(n, torch.nn.Conv2d):
                        # AutoDL's ReLUConvBN gives the conv a bias when its BN has no affine (bias=not affine);
                        # the BN's mean subtraction cancels any bias, so zero is the same function.
                        pb.zero_()
                        continue
                    if (pa is None) != (pb is None) or (pa is not None and pa.shape != pb.shape):
                        raise RuntimeError(f"weights differ in shape: {m} vs {n}")
                    if pa is not None:
                        pb.copy_(pa)
                        copied += 1
    return copied


class Pair:
    """One harness `ws` strategy and one xautodl RSPS supernet of the same shape, on the same data."""

    def __init__(self, shape_name: str, device: torch.device, wheel: str | None = None, fetch: bool = True, root=None):
        TinyNetworkRANDOM, self.Structure = import_xautodl(wheel, fetch)
        preset, c, n, res, images, self.steps, self.n_archs = SHAPES[shape_name]
        self.shape_name, self.device = shape_name, device
        self.space = SPACES.get("nb201")()
        cfg = DataConfig(resolution=res, holdout_images=images, eval_images=images, eval_batch_size=images,
                         batch_size=64, train_images=None)
        self.data = DeviceData(cfg, device, root=root or data_root(None))
        self.net_shape = self.space.shape(num_classes=self.data.num_classes, channels=c, cells_per_stage=n, bn_mode="batch")
        train = resolve(preset).train
        ctx = StrategyContext(self.space, self.net_shape, train, self.data, device, 0, 100_000, False, "accuracy", ComputeConfig())
        ws = STRATEGIES.get("ws")
        self.ws = ws(ctx, build_options(ws.Options, {}, "ws"))
        self.peer = TinyNetworkRANDOM(c, n, 4, self.data.num_classes, list(OPS), False, False).to(device)
        batch_statistics_only(self.peer)
        self.copied = copy_weights(self.ws.supernet, self.peer)
        # AutoDL's RSPS optimiser: SGD with Nesterov momentum, weight decay, gradients clipped at 5.
        self.peer_opt = torch.optim.SGD(self.peer.parameters(), lr=train.lr, momentum=train.momentum,
                                        nesterov=train.nesterov, weight_decay=train.weight_decay)
        self.grad_clip = train.grad_clip
        archs = self.space.all_archs()
        self.archs = [archs[i] for i in np.random.default_rng(0).choice(len(archs), self.n_archs, replace=False)]

    def equivalence(self) -> dict:
        """Max |logit difference| over the check paths, in train and eval mode, on one training batch."""
        copy_weights(self.ws.supernet, self.peer)
        x, _ = self.data.train_batch(0, 0)
        worst = 0.0
        with torch.no_grad():
            for mode in (True, False):
                self.ws.supernet.train(mode)
                self.peer.train(mode)
                for text in CHECK_PATHS:
                    arch = Arch.parse(text)
                    self.peer.arch_cache = to_structure(arch, self.Structure)
                    ours, theirs = self.ws.supernet(x, arch), self.peer(x)[1]
                    worst = max(worst, (ours - theirs).abs().max().item())
        scale = 1e-4 if self.device.type == "cpu" else 1e-2  # cuDNN picks different kernels per layout and size
        return {"paths": len(CHECK_PATHS), "modes": ["train", "eval"], "tensors_copied": self.copied,
                "max_abs_diff": worst, "tolerance": scale, "verdict": "same logits" if worst <= scale else "DIFFERENT"}

    def step_fns(self):
        state = {"ours": 0, "theirs": 0}

        def ours():
            for _ in range(self.steps):
                i = state["ours"]
                x, y = self.data.train_batch(0, i)
                self.ws.train_step(i, x, y, self.archs[i % len(self.archs)])
                state["ours"] += 1
            _sync(self.device)

        def theirs():
            for _ in range(self.steps):
                i = state["theirs"]
                x, y = self.data.train_batch(0, i)
                self.peer.train()
                self.peer.arch_cache = to_structure(self.archs[i % len(self.archs)], self.Structure)
                self.peer_opt.zero_grad()
                _, logits = self.peer(x)
                F.cross_entropy(logits, y).backward()
                torch.nn.utils.clip_grad_norm_(self.peer.parameters(), self.grad_clip)
                self.peer_opt.step()
                state["theirs"] += 1
            _sync(self.device)

        return ours, theirs

    def estimate_fns(self):
        batches = self.data.eval_batches()
        k = archs_per_pass(self.ws.supernet, batches)
        out = {}

        def ours():
            self.ws.supernet.eval()
            out["ours"] = evaluate_many(self.ws.supernet, self.archs, batches, per_pass=k)[0]
            _sync(self.device)

        def theirs():
            self.peer.eval()
            accs = []
            with torch.no_grad():
                for arch in self.archs:
                    self.peer.arch_cache = to_structure(arch, self.Structure)
                    correct = total = 0
                    for x, y in batches:
                        _, logits = self.peer(x)
                        correct += (logits.argmax(1) == y).sum().item()
                        total += len(y)
                    accs.append(100.0 * correct / total)
            out["theirs"] = np.array(accs)
            _sync(self.device)

        return ours, theirs, out, k


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(shape_name: str, device: torch.device, allowance: float = 120.0, wheel: str | None = None,
            fetch: bool = True, echo=print) -> dict:
    started = time.monotonic()
    pair = Pair(shape_name, device, wheel, fetch)
    eq = pair.equivalence()
    echo(f"[{shape_name}] equivalence: {eq['paths']} paths x train/eval, {eq['tensors_copied']} weight tensors copied, "
         f"max |logit diff| {eq['max_abs_diff']:.2e} (tolerance {eq['tolerance']:.0e}): {eq['verdict']}")
    if eq["verdict"] != "same logits":
        raise RuntimeError(f"the two supernets disagree (max |logit diff| {eq['max_abs_diff']:.3g}): timings would compare different computations")
    repeats = 5 if shape_name != "smoke" and allowance > 60 else 2
    ours, theirs = pair.step_fns()
    steps = interleaved({"harness": ours, "xautodl": theirs}, repeats=repeats, warmup=1)
    est_ours, est_theirs, accs, k = pair.estimate_fns()
    copy_weights(pair.ws.supernet, pair.peer)  # the same weights again after the separate training steps
    estimation = interleaved({"harness": est_ours, "xautodl": est_theirs}, repeats=max(2, repeats - 2), warmup=1)
    acc_diff = float(np.max(np.abs(accs["ours"] - accs["theirs"])))
    result = {
        "shape": f"{shape_name}: C={pair.net_shape.channels} N={pair.net_shape.cells_per_stage} "
                 f"{pair.data.cfg.resolution}x{pair.data.cfg.resolution}, batch 64, {device.type}",
        "equivalence": eq,
        "step_ms": {name: 1000 * s / pair.steps for name, s in steps.items()},
        "estimate_archs": len(pair.archs),
        "estimate_images": sum(len(y) for _, y in pair.data.eval_batches()),
        "archs_per_pass": k,
        "estimate_ms_per_arch": {name: 1000 * s / len(pair.archs) for name, s in estimation.items()},
        "estimate_max_accuracy_diff": acc_diff,
        "threads": torch.get_num_threads(),
        "seconds": time.monotonic() - started,
    }
    result["step_ratio"] = result["step_ms"]["xautodl"] / result["step_ms"]["harness"]
    result["estimation_ratio"] = result["estimate_ms_per_arch"]["xautodl"] / result["estimate_ms_per_arch"]["harness"]
    echo(f"[{shape_name}] step ms: harness {result['step_ms']['harness']:.2f}, xautodl {result['step_ms']['xautodl']:.2f} "
         f"(median of {repeats} interleaved blocks of {pair.steps} steps)")
    echo(f"[{shape_name}] estimation ms/arch on {result['estimate_images']} images ({len(pair.archs)} archs): harness "
         f"batched (K={k}) {result['estimate_ms_per_arch']['harness']:.1f}, xautodl one at a time "
         f"{result['estimate_ms_per_arch']['xautodl']:.1f}; max accuracy difference {acc_diff:.3f} points")
    return result


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="mini", choices=["mini", "paper", "both", "smoke"],
                        help="mini (C=8 N=1 16x16), paper (C=16 N=5 32x32), both (mini, then paper), smoke (seconds; a test)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU (default 1, as the mini preset)")
    parser.add_argument("--xautodl-wheel", default=None, help="path of xautodl-1.0.0's wheel (default: fetched into .cache/peer)")
    parser.add_argument("--fetch-only", action="store_true", help="download the wheel into .cache/peer and stop")
    args = parser.parse_args(argv)
    try:
        if args.fetch_only:
            print(f"xautodl wheel: {wheel_path(args.xautodl_wheel)}")
            return None
        if args.threads < 1:
            raise HarnessError(f"--threads {args.threads!r} must be a positive integer")
        device = pick_device(args.device)
        if device.type == "cpu":
            torch.set_num_threads(args.threads)
        shapes = ["mini", "paper"] if args.shape == "both" else [args.shape]
        results = {name: measure(name, device, wheel=args.xautodl_wheel) for name in shapes}
    except (HarnessError, LookupError) as exc:
        print(f"error: {str(exc).strip(chr(39))}", file=sys.stderr)
        sys.exit(2)
    for name, r in results.items():
        if len(results) > 1:
            print(f"[{name}] harness/xautodl: step {r['step_ratio']:.2f}x, estimation {r['estimation_ratio']:.2f}x")
    last = results[shapes[-1]]
    print(f"harness/xautodl: step {last['step_ratio']:.2f}x, estimation {last['estimation_ratio']:.2f}x")
    return results


if __name__ == "__main__":
    main()
