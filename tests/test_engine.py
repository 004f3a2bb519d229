"""The training loop's device-side loss, finiteness checks, batches, compute options and run records."""
import math

import numpy as np
import pytest
import torch

from harness.training import engine
from harness.config import ComputeConfig, resolve
from harness.data.tensors import DeviceData, _seeded, augment
from harness.runs.envinfo import accelerator, environment
from harness.errors import DivergenceError, HarnessError
from harness.runs.fileio import read_json, write_json
from harness.runs.run import BenchRequest, bench


class Scripted:
    """A strategy whose losses are given: tensors (as strategies return them) or floats."""

    def __init__(self, losses, as_tensor=True):
        self.losses, self.as_tensor, self.autocast = losses, as_tensor, []

    def training_steps(self):
        return len(self.losses)

    def train_step(self, step, images, labels, arch=None):
        self.autocast.append((torch.is_autocast_enabled(images.device.type), images.is_contiguous(memory_format=torch.channels_last)))
        value = self.losses[step]
        return torch.tensor(value, device=images.device) if self.as_tensor else value

    def on_train_end(self):
        pass


@pytest.fixture(scope="module")
def smoke_data(data_dir):
    return DeviceData(resolve("smoke").data, "cpu", root=data_dir)


@pytest.mark.parametrize("as_tensor", [True, False])
def test_divergence_names_the_step_and_the_checked_range_and_keeps_the_last_good_checkpoint(smoke_data, as_tensor):
    losses = [1.0] * 20
    losses[9] = math.nan
    saved = []
    strategy = Scripted(losses, as_tensor)
    with pytest.raises(DivergenceError, match=r"loss=nan at step 10 \(steps 9\.\.12 were checked together\); the last good checkpoint \(step 8\) is kept"):
        engine.train(strategy, smoke_data, 0, 0, saved.append, checkpoint_every=4, progress=False, check_finite_every=6)
    assert saved == [4, 8]  # the checkpoint after step 11 (done=12) is never written: step 9 was not finite


def test_a_non_finite_loss_just_before_a_checkpoint_never_reaches_it(smoke_data):
    losses = [1.0] * 8
    losses[3] = math.inf
    saved = []
    with pytest.raises(DivergenceError, match=r"at step 4 \(steps 1\.\.4 were checked together\); the last good checkpoint \(step 0\)"):
        engine.train(Scripted(losses), smoke_data, 0, 0, saved.append, checkpoint_every=4, progress=False, check_finite_every=100)
    assert saved == []


def test_finite_losses_train_to_the_end(smoke_data):
    saved = []
    assert engine.train(Scripted([0.5] * 10), smoke_data, 0, 0, saved.append, 4, progress=False, check_finite_every=3) == 10
    assert saved == [4, 8, 10]


def _old_train_batch(data, seed, step):
    # The formula before batches moved to the training device: a fresh CPU randperm per step.
    epoch, index = divmod(step, data.steps_per_epoch)
    perm = torch.randperm(len(data.train_y), generator=_seeded(seed, 1, epoch))
    rows = perm[index * data.cfg.batch_size : (index + 1) * data.cfg.batch_size]
    return augment(data.train_x[rows], _seeded(seed, 2, step)), data.train_y[rows]


def _old_half_batch(data, seed, step, half):
    rows = data.halves()[half]
    bs = data.cfg.batch_size
    epoch, index = divmod(step, len(rows) // bs)
    perm = torch.randperm(len(rows), generator=_seeded(seed, 3, half, epoch))
    picked = rows[perm[index * bs : (index + 1) * bs]]
    return augment(data.train_x[picked], _seeded(seed, 4, half, step)), data.train_y[picked]


def test_cpu_batches_are_bit_identical_to_the_per_step_formula(smoke_data):
    steps = list(range(0, 3 * smoke_data.steps_per_epoch + 2)) + [0, 5, 1]  # crosses epochs, revisits cached ones
    for step in steps:
        for seed in (0, 3):
            x, y = smoke_data.train_batch(seed, step)
            ox, oy = _old_train_batch(smoke_data, seed, step)
            assert torch.equal(x, ox) and torch.equal(y, oy)
            for half in (0, 1):
                hx, hy = smoke_data.half_batch(seed, step % 4, half)
                ohx, ohy = _old_half_batch(smoke_data, seed, step % 4, half)
                assert torch.equal(hx, ohx) and torch.equal(hy, ohy)


def test_bf16_autocast_and_channels_last_reach_the_training_step(data_dir):
    data = DeviceData(resolve("smoke").data, "cpu", root=data_dir)
    compute = ComputeConfig(precision="bf16", channels_last=True)
    applied = engine.configure(compute, torch.device("cpu"), data)
    assert applied["precision"] == "bf16" and applied["channels_last"] is True
    strategy = Scripted([1.0] * 3)
    engine.train(strategy, data, 0, 0, lambda _s: None, 10, progress=False, compute=compute)
    assert strategy.autocast == [(True, True)] * 3
    x, _ = data.eval_batches()[0]
    assert x.is_contiguous(memory_format=torch.channels_last)
    plain = Scripted([1.0])
    engine.train(plain, DeviceData(resolve("smoke").data, "cpu", root=data_dir), 0, 0, lambda _s: None, 10, progress=False)
    assert plain.autocast == [(False, False)]


def test_env_records_gpu_versions_only_on_cuda(tmp_path):
    assert accelerator(torch.device("cpu")) == {"gpu_name": None, "gpu_driver": None, "cuda_version": None, "cudnn_version": None}
    env = environment(torch.device("cpu"), [])
    assert env["device"]["cuda_version"] is None and env["device"]["type"] == "cpu"


def test_paper_preset_refuses_a_partial_cifar10_before_any_work(tmp_path, env_data):
    with pytest.raises(HarnessError, match=r"needs 50,000 cifar10 training images.*python -m harness download cifar10"):
        bench(BenchRequest(strategy="ws", preset="paper", runs_dir=tmp_path, progress=False, device="cpu"))
    assert not any(tmp_path.iterdir())


def test_paper_shape_preset_is_the_nb201_protocol_on_whatever_data_is_present():
    shape, paper = resolve("paper-shape"), resolve("paper")
    assert (shape.shape.channels, shape.shape.cells_per_stage, shape.data.resolution, shape.train.epochs) == (16, 5, 32, 250)
    assert (shape.train.lr, shape.train.lr_min, shape.data.batch_size) == (paper.train.lr, paper.train.lr_min, paper.data.batch_size)
    assert shape.eval.num_archs == 0 and shape.data.min_train_images == 0 and paper.data.min_train_images == 50000


def test_resume_refuses_another_device_kind(tmp_path, env_data):
    req = BenchRequest(strategy="ws", preset="smoke", runs_dir=tmp_path, progress=False, device="cpu", name="r",
                       overrides=("train.steps=2", "eval.num_archs=4", "eval.bootstrap=1"))
    bench(req)
    record = read_json(tmp_path / "r" / "config.json")
    record["identity"]["device_kind"] = "cuda:NVIDIA H100"
    write_json(tmp_path / "r" / "config.json", record)
    with pytest.raises(HarnessError, match="device kind"):
        bench(BenchRequest(**{**vars(req), "resume": True}))


def test_check_finite_every_must_be_positive():
    with pytest.raises(HarnessError, match="train.check_finite_every=0"):
        resolve("smoke", ("train.check_finite_every=0",))
