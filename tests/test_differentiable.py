import io
import json

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from harness.config import build_options, resolve
from harness.data.tensors import DeviceData
from harness.errors import HarnessError
from harness.groundtruth import COLUMNS
from harness.registry import SPACES, STRATEGIES
from harness.run import BenchRequest, bench
from harness.spaces.nb201.arch import NONE, OPS, Arch
from harness.spaces.nb201.network import NB201Network, NetworkShape
from harness.strategies.base import StrategyContext
from harness.strategies.differentiable.base import gumbel_hard

DIFFERENTIABLE = ("darts", "darts2", "gdas", "idarts")


def one_hot(arch: Arch) -> torch.Tensor:
    return F.one_hot(torch.tensor(arch.ops), len(OPS)).float()


@pytest.mark.parametrize("skip_zero", [False, True])
def test_mixed_forward_with_one_hot_weights_is_the_single_path_forward(skip_zero):
    torch.manual_seed(0)
    net = NB201Network(NetworkShape(channels=4, cells_per_stage=2, bn_mode="batch"))
    x = torch.randn(6, 3, 8, 8)
    for ops in [(3, 3, 4, 1, 3, 1), (0, 0, 0, 1, 0, 0), (2, 4, 0, 3, 1, 2), (0,) * 6, (1,) * 6]:
        arch = Arch(ops)
        assert torch.allclose(net.forward_mixed(x, one_hot(arch), skip_zero), net(x, arch), atol=1e-6)


def test_mixed_forward_rejects_wrong_weight_shape():
    net = NB201Network(NetworkShape(channels=4, cells_per_stage=1))
    with pytest.raises(HarnessError, match="expected \\(6, 5\\)"):
        net.forward_mixed(torch.randn(2, 3, 8, 8), torch.ones(6, 4))


def _sample_without_none(alpha, tau):
    for seed in range(100):
        weights = gumbel_hard(alpha, tau, torch.Generator().manual_seed(seed))
        if not bool((weights.detach().argmax(-1) == NONE).any()):
            return weights
    raise AssertionError("no sample without `none` in 100 draws")


def test_gdas_forward_is_one_hot_and_every_alpha_gets_gradient():
    torch.manual_seed(0)
    net = NB201Network(NetworkShape(channels=4, cells_per_stage=1))
    alpha = torch.nn.Parameter(1e-3 * torch.randn(6, 5))
    weights = _sample_without_none(alpha, tau=1.0)
    values = weights.detach()
    assert set(values.unique().tolist()) <= {0.0, 1.0} and torch.equal(values.sum(-1), torch.ones(6))
    arch = Arch(tuple(values.argmax(-1).tolist()))
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 10, (8,))
    logits = net.forward_mixed(x, weights, skip_zero_weights=True)
    assert torch.allclose(logits, net(x, arch), atol=1e-6)  # only the sampled ops ran
    F.cross_entropy(logits, y).backward()
    assert alpha.grad is not None and bool((alpha.grad != 0).all()), alpha.grad


def test_gdas_architecture_step_survives_a_sample_that_disconnects_the_cell(smoke_ctx, monkeypatch):
    strategy = smoke_ctx("gdas")
    all_none = F.one_hot(torch.full((6,), NONE), len(OPS)).float()
    monkeypatch.setattr(strategy, "mixing_weights", lambda step, purpose: all_none + 0 * strategy.alpha)
    data = strategy.ctx.data
    strategy.architecture_step(0, data.half_batch(0, 0, 0), data.half_batch(0, 0, 1))
    assert torch.equal(strategy.alpha.grad, torch.zeros_like(strategy.alpha))


@pytest.fixture
def smoke_ctx(data_dir):
    def make(name: str, overrides=()):
        cfg = resolve("smoke", list(overrides))
        space = SPACES.get("nb201")()
        data = DeviceData(cfg.data, "cpu", root=data_dir)
        shape = space.shape(num_classes=data.num_classes, **vars(cfg.shape))
        cls = STRATEGIES.get(name)
        torch.manual_seed(0)
        ctx = StrategyContext(space, shape, cfg.train, data, torch.device("cpu"), 0, 3 * data.steps_per_epoch, progress=False)
        return cls(ctx, build_options(cls.Options, cfg.strategy.get(name, {}), name))

    return make


def test_training_halves_are_disjoint_fixed_and_recorded(data_dir):
    data = DeviceData(resolve("smoke").data, "cpu", root=data_dir)
    first, second = (set(h.tolist()) for h in data.halves())
    assert not first & second and len(first | second) == len(data.train_y)
    x0, y0 = data.half_batch(3, 5, 0)
    x1, y1 = data.half_batch(3, 5, 0)
    assert torch.equal(x0, x1) and torch.equal(y0, y1)
    assert data.describe_halves()["disjoint"] is True
    with pytest.raises(HarnessError, match="accepted: 0, 1"):
        data.half_batch(0, 0, 2)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_training_changes_weights_and_alpha(smoke_ctx, name):
    strategy = smoke_ctx(name)
    before = [p.detach().clone() for p in strategy.params]
    alpha_before = strategy.alpha.detach().clone()
    for step in range(10):  # covers two idarts architecture steps (inner_steps = 5)
        assert torch.isfinite(torch.tensor(strategy.train_step(step, None, None)))
    changed = [not torch.equal(a, p.detach()) for a, p in zip(before, strategy.params)]
    # GDAS trains only the sampled op of each edge, so in 10 steps some ops are never touched.
    assert sum(changed) > (0.6 if name == "gdas" else 0.99) * len(changed)
    assert not torch.equal(alpha_before, strategy.alpha.detach())
    assert strategy.weight_steps == 10
    assert strategy.arch_steps == (2 if name == "idarts" else 10)


def test_darts2_restores_weights_exactly_after_finite_differences(smoke_ctx):
    strategy = smoke_ctx("darts2")
    for step in range(3):
        strategy.train_step(step, None, None)
    data = strategy.ctx.data
    train, val = data.half_batch(0, 3, 0), data.half_batch(0, 3, 1)
    weights = [p.detach().clone() for p in strategy.params]
    buffers = [strategy.optimizer.state[p]["momentum_buffer"].clone() for p in strategy.params]
    alpha = strategy.alpha.detach().clone()
    strategy.architecture_step(3, train, val)
    assert all(torch.equal(w, p.detach()) for w, p in zip(weights, strategy.params))
    assert all(torch.equal(b, strategy.optimizer.state[p]["momentum_buffer"]) for b, p in zip(buffers, strategy.params))
    assert not torch.equal(alpha, strategy.alpha.detach())


def test_idarts_architecture_step_leaves_weights_alone(smoke_ctx):
    strategy = smoke_ctx("idarts")
    data = strategy.ctx.data
    weights = [p.detach().clone() for p in strategy.params]
    strategy.architecture_step(0, data.half_batch(0, 0, 0), data.half_batch(0, 0, 1))
    assert all(torch.equal(w, p.detach()) for w, p in zip(weights, strategy.params))
    assert all(p.grad is None for p in strategy.params)


@pytest.mark.parametrize("name", ["gdas", "darts2"])
def test_checkpoint_round_trip_continues_identically(smoke_ctx, name):
    a = smoke_ctx(name)
    for step in range(3):
        a.train_step(step, None, None)
    buffer = io.BytesIO()  # through bytes, as a checkpoint file: no tensor is shared between a and b
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b = smoke_ctx(name)
    b.load_state_dict(torch.load(buffer, weights_only=False))
    for step in range(3, 6):
        assert a.train_step(step, None, None) == b.train_step(step, None, None)
    assert torch.equal(a.alpha, b.alpha)
    assert a.history == b.history


def test_bad_options_fail_with_one_line(smoke_ctx):
    with pytest.raises(HarnessError, match="rank_by 'best'; accepted: alpha, supernet"):
        smoke_ctx("darts", ["strategy.darts.rank_by=best"])
    with pytest.raises(HarnessError, match="inner_steps=0"):
        smoke_ctx("idarts", ["strategy.idarts.inner_steps=0"])
    with pytest.raises(HarnessError, match="tau_max=0.05 must be >= tau_min=0.1"):
        smoke_ctx("gdas", ["strategy.gdas.tau_max=0.05"])


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_smoke_run_records_search_history_and_both_rankings(name, env_data, ground_truth, tmp_path):
    metrics = bench(BenchRequest(strategy=name, preset="smoke", runs_dir=tmp_path, progress=False))
    summary = metrics["strategy_summary"]
    history = summary["history"]
    assert [h["step"] for h in history] == [0, metrics["steps_per_epoch"]]
    final = history[-1]
    arch = Arch.parse(final["arch"])
    for column in COLUMNS:
        assert final[column] == pytest.approx(float(ground_truth.values([arch], column)[0]))
    assert summary["derived_arch"] == final["arch"] and summary["rank_by"] == "alpha"
    assert summary["data_halves"]["disjoint"] and sum(summary["data_halves"]["sizes"]) == metrics["data"]["train_images"]
    assert summary["weight_steps"] == metrics["total_steps"]
    predictions = pd.read_csv(next(tmp_path.iterdir()) / "predictions.csv")
    assert (predictions["estimate"] == predictions["alpha_score"]).all()
    assert predictions["supernet_acc"].between(0, 100).all()
    json.dumps(metrics)


def test_rank_by_supernet_scores_the_single_path_accuracy(env_data, tmp_path):
    bench(BenchRequest(strategy="gdas", preset="smoke", runs_dir=tmp_path, progress=False,
                       overrides=("strategy.gdas.rank_by=supernet",)))
    predictions = pd.read_csv(next(tmp_path.iterdir()) / "predictions.csv")
    assert (predictions["estimate"] == predictions["supernet_acc"]).all()


def test_search_table_and_plots_from_run_directories(env_data, tmp_path):
    from harness.plots.search import plot_search
    from harness.reports.search_table import collect, published, render

    for seed in (0, 1):
        bench(BenchRequest(strategy="darts", preset="smoke", seed=seed, runs_dir=tmp_path, progress=False))
    runs = collect([tmp_path])
    assert sorted(runs["seed"]) == [0, 1]
    table = render(runs)
    row = next(line for line in table.splitlines() if line.startswith("| darts (this harness)"))
    mean = runs["cifar10_test"].mean()
    assert f"{mean:.2f} ± {runs['cifar10_test'].std(ddof=1):.2f}" in row
    for ref in published():
        assert f"{ref['name']} (published) | {ref['source']}" in table
    darts = next(ref for ref in published() if "darts" in ref["strategies"])
    assert (darts["cifar10_test"], darts["cifar100_test"], darts["imagenet16_120_test"]) == (54.30, 15.61, 16.32)

    paths = plot_search(sorted(tmp_path.iterdir()), tmp_path / "figures" / "search")
    assert sorted(p.name for p in paths) == ["search_accuracy.pdf", "search_accuracy.png", "search_ops.pdf", "search_ops.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_plot_search_refuses_runs_without_history(env_data, tmp_path):
    from harness.plots.search import plot_search

    bench(BenchRequest(strategy="ws", preset="smoke", runs_dir=tmp_path, progress=False))
    with pytest.raises(HarnessError, match="records no search history"):
        plot_search([next(tmp_path.iterdir())], tmp_path / "out")


def test_search_history_of_an_unfinished_run_comes_from_its_checkpoint(env_data, tmp_path):
    from harness.plots.search import load_history

    metrics = bench(BenchRequest(strategy="gdas", preset="smoke", runs_dir=tmp_path, progress=False))
    run_dir = next(tmp_path.iterdir())
    finished = load_history(run_dir)
    (run_dir / "metrics.json").unlink()  # as if the run were still going: only the checkpoint holds the history
    unfinished = load_history(run_dir)
    assert unfinished.label == f"gdas seed 0 (unfinished, step {metrics['total_steps']})"
    pd.testing.assert_frame_equal(unfinished.frame, finished.frame, check_like=True)  # json sorts the keys
