"""Device-resident image tensors, leak-free splits and vectorised augmentation.

Every batch is a pure function of (seed, step): the epoch's permutation is drawn from a generator seeded
with (seed, epoch), and the augmentation from one seeded with (seed, step). A resumed run therefore sees
exactly the batches an uninterrupted run would, with no RNG state to save. Both generators live on the
training device (no host work or transfer per step on a GPU) and each epoch's permutation is drawn once and
cached. On the CPU the numbers are those of a CPU generator, as before; a CUDA generator draws other
(equally pure) numbers, so a run's batches depend on the device kind, which is recorded and checked on resume.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from harness.data.cifar import MEAN, NUM_CLASSES, STD, load_split
from harness.errors import HarnessError


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "cifar10"
    resolution: int = 32
    # Images taken from the official training split for supernet training / held-out estimation; the
    # held-out ones are chosen by `split_seed` (not the run seed), so all runs estimate on the same images.
    train_images: int | None = None  # None: everything not held out
    holdout_images: int = 1000
    # Also hold out the official test split's images. They are never trained on either; small data sets
    # (the 5,590-image workplace subset) need them to make estimates less noisy. Recorded in every run.
    holdout_test: bool = False
    split_seed: int = 0
    augment: bool = True
    batch_size: int = 64
    eval_batch_size: int = 500
    eval_images: int = 1000
    # Training-split images a protocol needs (the paper preset: all 50,000); 0 = whatever is present.
    min_train_images: int = 0

    def validate(self) -> None:
        if self.resolution not in (8, 16, 32):
            raise HarnessError(f"data.resolution={self.resolution!r} is not supported; accepted: 8, 16, 32")
        for name in ("holdout_images", "batch_size", "eval_batch_size", "eval_images"):
            if int(getattr(self, name)) < 1:
                raise HarnessError(f"data.{name}={getattr(self, name)!r} must be a positive integer")
        if self.eval_images > self.holdout_images and not self.holdout_test:
            raise HarnessError(
                f"data.eval_images={self.eval_images} exceeds data.holdout_images={self.holdout_images}; estimates may only use held-out images"
            )


def _seeded(*keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    # SeedSequence mixes the keys so (seed, 1) and (seed + 1, 0) give unrelated streams.
    seed = int(np.random.SeedSequence(list(keys)).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator(device=device).manual_seed(seed)


_CACHED_PERMUTATIONS = 8  # streams alive at once: train, extra batches, two halves


@dataclass
class SplitRecord:
    train_rows: list[int] = field(default_factory=list)
    holdout_rows: list[int] = field(default_factory=list)


class DeviceData:
    """Normalised float tensors on `device`: `train_x/train_y` for training, `holdout_x/holdout_y` for estimates."""

    def __init__(self, cfg: DataConfig, device: torch.device | str = "cpu", root=None):
        cfg.validate()
        self.cfg = cfg
        self.device = torch.device(device)
        raw = load_split(cfg.dataset, "train", root)
        self.files = raw.files
        self.num_classes = NUM_CLASSES[cfg.dataset]
        n = len(raw.labels)
        if n < cfg.min_train_images:
            raise HarnessError(
                f"data.min_train_images={cfg.min_train_images}: this protocol needs {cfg.min_train_images:,} {cfg.dataset} training "
                f"images, the data directory holds {n:,} -- get them with `python -m harness download {cfg.dataset}`"
                + (" (or run the `paper-shape` preset on what is present)" if cfg.dataset == "cifar10" else "")
            )
        wanted_train = n - cfg.holdout_images if cfg.train_images is None else cfg.train_images
        if cfg.holdout_images + wanted_train > n or wanted_train < cfg.batch_size:
            raise HarnessError(
                f"data.train_images={cfg.train_images!r} + data.holdout_images={cfg.holdout_images} do not fit the "
                f"{n} training images found (and training needs at least one batch of {cfg.batch_size})"
            )
        order = np.random.default_rng(cfg.split_seed).permutation(n)
        holdout_rows = np.sort(order[: cfg.holdout_images])
        train_rows = np.sort(order[cfg.holdout_images : cfg.holdout_images + wanted_train])
        self.split = SplitRecord(train_rows.tolist(), holdout_rows.tolist())
        self.train_x = self._prepare(raw.images[train_rows])
        self.train_y = torch.as_tensor(raw.labels[train_rows], device=self.device)
        holdout_images, holdout_labels = raw.images[holdout_rows], raw.labels[holdout_rows]
        self.holdout_test_images = 0
        if cfg.holdout_test:
            test = load_split(cfg.dataset, "test", root)
            self.files = self.files + test.files
            self.holdout_test_images = len(test.labels)
            holdout_images = np.concatenate([holdout_images, test.images])
            holdout_labels = np.concatenate([holdout_labels, test.labels])
        if cfg.eval_images > len(holdout_labels):
            raise HarnessError(
                f"data.eval_images={cfg.eval_images} exceeds the {len(holdout_labels)} held-out images; estimates may only use held-out images"
            )
        self.holdout_x = self._prepare(holdout_images)
        self.holdout_y = torch.as_tensor(holdout_labels, device=self.device)
        self.steps_per_epoch = len(self.train_y) // cfg.batch_size
        self.root = root  # where the data came from, for strategies that also read the ground truth
        self._halves: tuple[torch.Tensor, torch.Tensor] | None = None
        self._perms: dict[tuple[int, ...], torch.Tensor] = {}

    def _permutation(self, n: int, *keys: int) -> torch.Tensor:
        """randperm(n) from the generator seeded with `keys` (the last key is the epoch), on the device, cached."""
        perm = self._perms.get(keys)
        if perm is None:
            if len(self._perms) >= _CACHED_PERMUTATIONS:
                self._perms.pop(next(iter(self._perms)))
            perm = torch.randperm(n, generator=_seeded(*keys, device=self.device), device=self.device)
            self._perms[keys] = perm
        return perm

    def use_channels_last(self) -> None:
        """Stores the images NHWC (compute.channels_last): convs then run in that layout."""
        self.train_x = self.train_x.contiguous(memory_format=torch.channels_last)
        self.holdout_x = self.holdout_x.contiguous(memory_format=torch.channels_last)

    def _prepare(self, images: np.ndarray) -> torch.Tensor:
        # Normalised on the CPU (the numbers every preset was measured with), then moved once.
        x = torch.as_tensor(images, dtype=torch.float32, device="cpu").div_(255.0)
        if self.cfg.resolution != 32:
            # Area averaging, once at load time: what a CPU preset trains on is fixed, not resampled per step.
            x = F.adaptive_avg_pool2d(x, self.cfg.resolution)
        mean = torch.tensor(MEAN[self.cfg.dataset], device="cpu").view(1, 3, 1, 1)
        std = torch.tensor(STD[self.cfg.dataset], device="cpu").view(1, 3, 1, 1)
        return ((x - mean) / std).contiguous().to(self.device)

    def describe(self) -> dict:
        return {
            "dataset": self.cfg.dataset,
            "train_images": len(self.train_y),
            "holdout_images": len(self.holdout_y),
            "eval_images": min(self.cfg.eval_images, len(self.holdout_y)),
            "resolution": self.cfg.resolution,
            "holdout_rows_sha256": _rows_digest(self.split.holdout_rows),
            "holdout_test_images": self.holdout_test_images,
            "train_rows_sha256": _rows_digest(self.split.train_rows),
            "source_split": "official train split (held-out rows never used for training)"
            + (" + official test split, held out" if self.holdout_test_images else ""),
        }

    def train_batch(self, seed: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = divmod(step, self.steps_per_epoch)
        perm = self._permutation(len(self.train_y), seed, 1, epoch)
        rows = perm[index * self.cfg.batch_size : (index + 1) * self.cfg.batch_size]
        x, y = self.train_x[rows], self.train_y[rows]
        if self.cfg.augment:
            x = augment(x, _seeded(seed, 2, step, device=self.device))
        return x, y

    def extra_batch(self, seed: int, step: int, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
        """An independent batch from the training images (for strategies that need a second draw per step)."""
        return self.train_batch(seed * 1000 + 17 * stream + 1, step)

    def halves(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Two disjoint halves of the training images (positions in train_x), fixed by data.split_seed."""
        if self._halves is None:
            order = np.random.default_rng([self.cfg.split_seed, 1]).permutation(len(self.train_y))
            middle = len(order) // 2
            self._halves = tuple(torch.as_tensor(np.sort(part), device=self.device) for part in (order[:middle], order[middle:]))
        return self._halves

    def half_batch(self, seed: int, step: int, half: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch from one half only (bi-level search: weights on half 0, architecture on half 1); pure in (seed, step)."""
        if half not in (0, 1):
            raise HarnessError(f"training half {half!r} does not exist; accepted: 0, 1")
        rows = self.halves()[half]
        bs = self.cfg.batch_size
        per_epoch = len(rows) // bs
        if per_epoch < 1:
            raise HarnessError(f"half of the {len(self.train_y)} training images holds no batch of data.batch_size={bs}")
        epoch, index = divmod(step, per_epoch)
        perm = self._permutation(len(rows), seed, 3, half, epoch)
        picked = rows[perm[index * bs : (index + 1) * bs]]
        x, y = self.train_x[picked], self.train_y[picked]
        if self.cfg.augment:
            x = augment(x, _seeded(seed, 4, half, step, device=self.device))
        return x, y

    def describe_halves(self) -> dict:
        sizes, digests = [], []
        for rows in self.halves():
            sizes.append(len(rows))
            digests.append(_rows_digest([self.split.train_rows[i] for i in rows.tolist()]))
        first, second = (set(rows.tolist()) for rows in self.halves())
        return {"sizes": sizes, "rows_sha256": digests, "split_seed": self.cfg.split_seed, "disjoint": not first & second}

    def eval_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Fixed held-out batches, no augmentation: every architecture is estimated on the same images."""
        n = min(self.cfg.eval_images, len(self.holdout_y))
        bs = self.cfg.eval_batch_size
        return [(self.holdout_x[i : i + bs], self.holdout_y[i : i + bs]) for i in range(0, n, bs)]


def _rows_digest(rows: list[int]) -> str:
    import hashlib

    return hashlib.sha256(np.asarray(rows, dtype=np.int64).tobytes()).hexdigest()[:16]


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop after zero padding (1/8 of the side, i.e. 4 px at 32x32) and horizontal flip, batched.

    The random numbers come from `generator` on its own device; the result keeps x's memory layout."""
    b, _, h, w = x.shape
    nhwc = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    gdev = generator.device
    pad = max(1, h // 8)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=gdev).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=gdev).to(x.device)
    flip = torch.rand(b, generator=generator, device=gdev).to(x.device) < 0.5
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])  # (b, h)
    cols = dx[:, None] + torch.arange(w, device=x.device)[None, :]  # (b, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (b, h, w, c)
    out = out.permute(0, 3, 1, 2)  # NHWC storage already: channels_last as it stands
    return out if nhwc else out.contiguous()
