"""Training-free baselines: `params`, `flops`, `live_flops`, `synflow`, `naswot`, `snip`, `gradnorm`, `random`.

Each scores an architecture from its own freshly initialised standalone network (the run's shape), with
no supernet and no training (`training_steps() == 0`), so they are the bar a weight-sharing strategy must
clear at zero cost. Initialisation is seeded by (run seed, architecture), so a score does not depend on
which other architectures are scored or in what order; data-using proxies see one fixed, unaugmented
batch of training images drawn with the run seed.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from tqdm import tqdm

from harness.strategies.training_free import proxies
from harness.errors import HarnessError
from harness.registry import STRATEGIES
from harness.strategies.base import Strategy


def arch_key(arch: Any) -> int:
    """A stable 63-bit integer per architecture string (space-agnostic, unlike an arch's own code)."""
    return int.from_bytes(hashlib.sha256(str(arch).encode()).digest()[:8], "big") >> 1


def init_seed(run_seed: int, arch: Any) -> int:
    return int(np.random.SeedSequence([run_seed, 6, arch_key(arch)]).generate_state(1, dtype=np.uint64)[0] >> 1)


@dataclass(frozen=True)
class BatchOptions:
    # Images in the one proxy batch; naswot's kernel is batch x batch, snip/gradnorm average the loss over it.
    batch_size: int = 64

    def validate(self) -> None:
        if self.batch_size < 2:
            raise HarnessError(f"batch_size={self.batch_size!r} must be an integer >= 2 (a proxy batch needs two images)")


class TrainingFreeStrategy(Strategy):
    """Scores = a proxy of each architecture's freshly initialised standalone network."""

    training_free: ClassVar[bool] = True
    uses_batch: ClassVar[bool] = False
    uses_network: ClassVar[bool] = True

    def __init__(self, ctx, options):
        super().__init__(ctx, options)
        self._batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self._batch_rows: list[int] = []
        self._replaced = 0

    def training_steps(self) -> int:
        return 0

    def train_step(self, step, images, labels, arch=None) -> float:
        raise HarnessError(f"strategy {self.name!r} is training-free; it has no training step")

    def proxy(self, network: torch.nn.Module) -> float:
        raise NotImplementedError

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._batch is None:
            data = self.ctx.data
            size = self.options.batch_size
            if size > len(data.train_y):
                raise HarnessError(
                    f"strategy.{self.name}.batch_size={size} exceeds the {len(data.train_y)} training images of this preset"
                )
            generator = torch.Generator().manual_seed(init_seed(self.ctx.seed, "proxy-batch"))
            rows = torch.randperm(len(data.train_y), generator=generator, device=generator.device)[:size].sort().values
            self._batch_rows = rows.tolist()
            rows = rows.to(data.device)
            self._batch = (data.train_x[rows], data.train_y[rows])
        return self._batch

    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.ctx.data.train_x.shape[1:])  # type: ignore[return-value]

    def score_one(self, arch: Any) -> float:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed(self.ctx.seed, arch))
            network = self.ctx.space.build_standalone(arch, self.ctx.shape).to(self.ctx.device)
        network.train()
        return self.proxy(network)

    def estimate(self, archs: Sequence[Any]) -> dict[str, np.ndarray]:
        raw = np.array(
            [self.score_one(a) for a in tqdm(archs, desc=self.name, disable=not self.ctx.progress, leave=False, unit="arch")],
            dtype=np.float64,
        )
        score, self._replaced = proxies.finite_or_last(raw)
        return {"score": score, "proxy": raw}

    def summary(self) -> dict:
        out: dict[str, Any] = {
            "proxy": self.name,
            "training_free": True,
            "network": "standalone, freshly initialised" if self.uses_network else "none",
            "shape": dataclasses.asdict(self.ctx.shape) if dataclasses.is_dataclass(self.ctx.shape) else str(self.ctx.shape),
            "image_shape": list(self.image_shape()),
            "seed": self.ctx.seed,
            "init_seed": "SeedSequence([seed, 6, sha256(arch string)])" if self.uses_network else None,
            "undefined_scores_ranked_last": self._replaced,
        }
        if self.uses_batch:
            self.batch()
            out["proxy_batch"] = {
                "images": len(self._batch_rows),
                "source": "training images (never held-out ones), no augmentation; network in train mode (BN uses batch statistics)",
                "drawn_with_seed": self.ctx.seed,
                "rows_sha256": hashlib.sha256(np.asarray(self._batch_rows, dtype=np.int64).tobytes()).hexdigest()[:16],
            }
        return out


@STRATEGIES.register("params")
class ParamCount(TrainingFreeStrategy):
    name = "params"

    def proxy(self, network) -> float:
        return proxies.param_count(network)


@STRATEGIES.register("flops")
class FlopCount(TrainingFreeStrategy):
    """FLOPs as the benchmark tabulates them (NB201: every edge's op counted, dead edges included)."""

    name = "flops"

    def proxy(self, network) -> float:
        return self.ctx.space.benchmark_flops(network, self.image_shape()[-1])


@STRATEGIES.register("live_flops")
class LiveFlopCount(TrainingFreeStrategy):
    """Multiply-accumulates of the convs and linears whose result reaches the output (what the forward runs)."""

    name = "live_flops"

    def proxy(self, network) -> float:
        return proxies.flop_count(network, self.image_shape()[-1])


@STRATEGIES.register("synflow")
class SynFlow(TrainingFreeStrategy):
    name = "synflow"

    def proxy(self, network) -> float:
        return proxies.synflow(network, self.image_shape())


@STRATEGIES.register("naswot")
class NASWOT(TrainingFreeStrategy):
    name = "naswot"
    uses_batch = True
    Options = BatchOptions

    def proxy(self, network) -> float:
        return proxies.naswot(network, self.batch()[0])


@STRATEGIES.register("snip")
class SNIP(TrainingFreeStrategy):
    name = "snip"
    uses_batch = True
    Options = BatchOptions

    def proxy(self, network) -> float:
        return proxies.snip(network, *self.batch())


@STRATEGIES.register("gradnorm")
class GradNorm(TrainingFreeStrategy):
    name = "gradnorm"
    uses_batch = True
    Options = BatchOptions

    def proxy(self, network) -> float:
        return proxies.gradnorm(network, *self.batch())


@STRATEGIES.register("random")
class RandomScore(TrainingFreeStrategy):
    """The floor: a uniform random score per (run seed, architecture)."""

    name = "random"
    uses_network = False

    def score_one(self, arch) -> float:
        return float(np.random.default_rng(init_seed(self.ctx.seed, arch)).random())
