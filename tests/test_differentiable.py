import io
import json

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from harness.config import build_options, resolve
from harness.data.tensors import DeviceData
from harness.errors import HarnessError
from harness.scoring.groundtruth import COLUMNS
from harness.registry import SPACES, STRATEGIES
from harness.runs.run import BenchRequest, bench
from harness.spaces.nb201.arch import NONE, OPS, Arch
from harness.spaces.nb201.network import NB201Network, NetworkShape
from harness.strategies.base import StrategyContext
from harness.strategies.differentiable.base import gumbel_hard

DIFFERENTIABLE = ("darts", "darts2", "gdas", "idarts")


def one_hot(arch: Arch) -> torch.Tensor:
    return F.one_hot(torch.tensor(arch.ops), len(OPS)).float()


@pytest.mark.parametrize("form", ["darts", "v1", "reference"])
def test_mixed_forward_with_one_hot_weights_is_the_single_path_forward(form):
    torch.manual_seed(0)
    net = NB201Network(NetworkShape(channels=4, cells_per_stage=2, bn_mode="batch"))
    x = torch.randn(6, 3, 8, 8)
    for ops in [(3, 3, 4, 1, 3, 1), (0, 0, 0, 1, 0, 0), (2, 4, 0, 3, 1, 2), (0,) * 6, (1,) * 6]:
        arch = Arch(ops)
        sampled = None if form == "darts" else ops
        out = net.forward_mixed(x, one_hot(arch), sampled, unsampled_as_scalars=form == "reference")
        assert torch.allclose(out, net(x, arch), atol=1e-6)


def test_mixed_forward_rejects_wrong_weight_shape_and_samples():
    net = NB201Network(NetworkShape(channels=4, cells_per_stage=1))
    with pytest.raises(HarnessError, match="expected \\(6, 5\\)"):
        net.forward_mixed(torch.randn(2, 3, 8, 8), torch.ones(6, 4))
    with pytest.raises(HarnessError, match="must be 6 op indices in 0..4"):
        net.forward_mixed(torch.randn(2, 3, 8, 8), torch.ones(6, 5), (0, 1, 2, 3, 4, 5))


def _forced_sample(alpha: torch.Tensor, ops: tuple[int, ...], tau: float = 1.0) -> torch.Tensor:
    """A straight-through sample whose hard value is `ops` (as gumbel_hard builds it, with fixed noise)."""
    gumbel = -torch.empty(alpha.shape).exponential_(generator=torch.Generator().manual_seed(3)).log()
    soft = F.softmax((F.log_softmax(alpha, dim=-1) + gumbel) / tau, dim=-1)
    return F.one_hot(torch.tensor(ops), len(OPS)).float() + (soft - soft.detach())


def test_gumbel_hard_is_one_hot_in_value_and_reports_the_sampled_ops():
    alpha = torch.nn.Parameter(torch.randn(6, 5, generator=torch.Generator().manual_seed(0)))
    weights, sampled = gumbel_hard(alpha, 1.0, torch.Generator().manual_seed(1))
    values = weights.detach()
    assert set(values.unique().tolist()) <= {0.0, 1.0} and torch.equal(values.sum(-1), torch.ones(6))
    assert sampled == tuple(values.argmax(-1).tolist())


# Edges whose result reaches the output: a cell whose output is a constant map (all `none` into node 3)
# is normalised away by the next batch-statistics BN, in the reference as here.
@pytest.mark.parametrize("ops", [(3, 0, 2, 0, 4, 1), (0, 3, 1, 0, 2, 4)])
def test_reference_gdas_forward_gives_every_alpha_a_gradient_when_none_is_sampled(smoke_ctx, ops):
    """AutoDL's forward_gdas (the default): unsampled entries enter as scalars, so `none` blocks nothing."""
    strategy = smoke_ctx("gdas")
    assert strategy.options.forward == "reference"
    data = strategy.ctx.data
    x, y = data.half_batch(0, 0, 1)
    weights = _forced_sample(strategy.alpha, ops)
    loss = strategy.loss_at(x, y, weights, ops)
    assert torch.allclose(loss, strategy.loss_at(x, y, weights.detach(), ops))  # scalars are 0 in value
    (grad,) = torch.autograd.grad(loss, [strategy.alpha])
    assert bool((grad != 0).all()), grad


def test_v1_gdas_forward_leaves_edges_that_sample_none_without_gradient(smoke_ctx):
    strategy = smoke_ctx("gdas", ["strategy.gdas.forward=v1"])
    x, y = strategy.ctx.data.half_batch(0, 0, 1)
    ops = (3, 0, 2, 0, 4, 1)
    loss = strategy.loss_at(x, y, _forced_sample(strategy.alpha, ops), ops)
    (grad,) = torch.autograd.grad(loss, [strategy.alpha])
    none_edges = [e for e, op in enumerate(ops) if op == NONE]
    assert torch.equal(grad[none_edges], torch.zeros(len(none_edges), len(OPS)))
    assert bool((grad[[e for e in range(6) if e not in none_edges]] != 0).all())


def test_v1_architecture_step_survives_a_sample_that_disconnects_the_cell(smoke_ctx, monkeypatch):
    strategy = smoke_ctx("gdas", ["strategy.gdas.forward=v1"])
    all_none = (NONE,) * 6
    monkeypatch.setattr(strategy, "mixing", lambda step, purpose: (_forced_sample(strategy.alpha, all_none), all_none))
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
def test_training_changes_weights_and_counts_steps(smoke_ctx, name):
    strategy = smoke_ctx(name)
    before = [p.detach().clone() for p in strategy.params]
    for step in range(10):  # covers two idarts architecture steps (inner_steps = 5)
        assert torch.isfinite(torch.tensor(strategy.train_step(step, None, None)))
    changed = [not torch.equal(a, p.detach()) for a, p in zip(before, strategy.params)]
    # GDAS trains only the sampled op of each edge, so in 10 steps some ops are never touched.
    assert sum(changed) > (0.6 if name == "gdas" else 0.99) * len(changed)
    assert strategy.weight_steps == 10
    assert strategy.arch_steps == (2 if name == "idarts" else 10)


def _in_double(strategy):
    """The strategy's supernet and alpha in float64, so finite differences resolve the gradient."""
    strategy.supernet.double()
    strategy.alpha.data = strategy.alpha.data.double()
    strategy.alpha.data.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))  # away from uniform
    data = strategy.ctx.data
    return tuple(t.double() if t.is_floating_point() else t for t in data.half_batch(0, 0, 0)), tuple(
        t.double() if t.is_floating_point() else t for t in data.half_batch(0, 0, 1)
    )


def _central_difference(f, alpha: torch.Tensor, entries, h: float) -> torch.Tensor:
    out = []
    for e, o in entries:
        original = float(alpha[e, o].detach())
        values = []
        for shifted in (original + h, original - h):
            with torch.no_grad():
                alpha[e, o] = shifted
            values.append(float(f().detach()))
        with torch.no_grad():
            alpha[e, o] = original
        out.append((values[0] - values[1]) / (2 * h))
    return torch.tensor(out, dtype=torch.float64)


def test_darts_alpha_gradient_matches_finite_differences_of_the_validation_loss(smoke_ctx):
    strategy = smoke_ctx("darts")
    train, val = _in_double(strategy)
    grad = strategy.alpha_gradient(0, train, val)
    entries = [(e, o) for e in range(6) for o in range(5)]
    # h small enough that no ReLU switches inside [alpha - h, alpha + h] (at 1e-4 some do on this batch).
    fd = _central_difference(lambda: strategy.loss_at(*val, F.softmax(strategy.alpha, dim=-1)), strategy.alpha, entries, h=1e-6)
    assert torch.allclose(grad.flatten(), fd, rtol=1e-4, atol=1e-8), (grad.flatten(), fd)


def test_idarts_hypergradient_matches_finite_differences_through_the_inner_optimum(smoke_ctx, monkeypatch):
    """Exact case: only the classifier is trained (a strongly convex inner problem given the features, with
    weight decay), solved to optimum; then d L_val(w*(alpha), alpha) / d alpha by central differences must
    equal the IFT hypergradient with enough Neumann terms."""
    strategy = smoke_ctx("idarts", ["train.weight_decay=0.05", "strategy.idarts.neumann_terms=400"])
    train, val = _in_double(strategy)
    net = strategy.supernet
    classifier = [net.classifier.weight, net.classifier.bias]
    monkeypatch.setattr(strategy, "params", classifier)
    wd = strategy.ctx.train.weight_decay

    def classifier_input(batch):
        captured = []
        handle = net.classifier.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0]))
        with torch.no_grad():
            strategy.loss_at(*batch, F.softmax(strategy.alpha, dim=-1))
        handle.remove()
        return captured[0]

    def solve_inner():
        """Newton's method on the 170 classifier parameters: the inner optimum to machine precision."""
        features, labels = classifier_input(train), train[1]
        weight, bias = classifier
        theta = torch.cat([weight.detach().flatten(), bias.detach()])

        def inner(t):
            logits = features @ t[: weight.numel()].view_as(weight).T + t[weight.numel():]
            return F.cross_entropy(logits, labels) + 0.5 * wd * (t * t).sum()

        for _ in range(50):
            step = torch.linalg.solve(torch.autograd.functional.hessian(inner, theta),
                                      torch.autograd.functional.jacobian(inner, theta))
            theta = theta - step
            if float(step.abs().max()) < 1e-15:
                break
        assert float(torch.autograd.functional.jacobian(inner, theta).abs().max()) < 1e-12
        with torch.no_grad():
            weight.copy_(theta[: weight.numel()].view_as(weight))
            bias.copy_(theta[weight.numel():])

    def val_at_optimum():
        solve_inner()
        with torch.no_grad():
            return strategy.loss_at(*val, F.softmax(strategy.alpha, dim=-1))

    entries = [(0, 0), (1, 3), (2, 2), (4, 4), (5, 1)]
    solve_inner()
    # gamma below 2 / (largest Hessian eigenvalue): the classifier's Hessian here is at most ~1.
    monkeypatch.setattr(strategy, "neumann_gamma", lambda: 0.5)
    hyper = strategy.alpha_gradient(0, train, val)
    fd = _central_difference(val_at_optimum, strategy.alpha, entries, h=1e-6)
    got = torch.stack([hyper[e, o] for e, o in entries])
    assert torch.allclose(got, fd, rtol=1e-4, atol=1e-8), (got, fd)
    # The direct term alone (first-order DARTS) is measurably different: the implicit term matters here.
    solve_inner()
    (first_order,) = torch.autograd.grad(strategy.loss_at(*val, F.softmax(strategy.alpha, dim=-1)), [strategy.alpha])
    first = torch.stack([first_order[e, o] for e, o in entries])
    assert not torch.allclose(first, fd, rtol=1e-2, atol=1e-7)


def test_idarts_neumann_gamma_follows_the_cosine_learning_rate(smoke_ctx, monkeypatch):
    import harness.strategies.differentiable.idarts as idarts

    gammas = []
    real = idarts.ift_hypergradient
    monkeypatch.setattr(idarts, "ift_hypergradient", lambda **kw: gammas.append(kw["gamma"]) or real(**kw))
    strategy = smoke_ctx("idarts", ["strategy.idarts.inner_steps=1"])
    lrs = []
    for step in range(4):
        strategy.train_step(step, None, None)
        lrs.append(strategy.current_lr())
    # One architecture step after each weight step, at the learning rate the scheduler just set.
    assert gammas == pytest.approx(lrs) and gammas[0] > gammas[1] > gammas[2] > gammas[3]
    assert strategy.history[0]["neumann_gamma"] == strategy.ctx.train.lr  # recorded per epoch; step 0: no decay yet
    fixed = smoke_ctx("idarts", ["strategy.idarts.inner_steps=1", "strategy.idarts.neumann_gamma=0.3"])
    gammas.clear()
    for step in range(3):
        fixed.train_step(step, None, None)
    assert gammas == [0.3, 0.3, 0.3]


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
    with pytest.raises(HarnessError, match="forward 'v2'; accepted: reference, v1"):
        smoke_ctx("gdas", ["strategy.gdas.forward=v2"])


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
    if name == "gdas":
        assert summary["gdas_forward"] == "forward_gdas" and summary["options"]["forward"] == "reference"
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
