"""Training-free proxies on tiny networks against values worked out by hand, and a smoke run of each strategy."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from harness.strategies.training_free import proxies
from harness.errors import HarnessError
from harness.runs.run import BenchRequest, bench

W1 = torch.tensor([[1.0, -2.0], [3.0, 0.5], [-1.0, 1.0]])  # 2 -> 3
W2 = torch.tensor([[2.0, -1.0, 0.5]])  # 3 -> 1


def two_layer(batchnorm: bool = False) -> nn.Sequential:
    layers = [nn.Linear(2, 3, bias=False)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(3))
    layers += [nn.ReLU(), nn.Linear(3, 1, bias=False)]
    net = nn.Sequential(*layers)
    with torch.no_grad():
        net[0].weight.copy_(W1)
        net[-1].weight.copy_(W2)
    return net


def test_synflow_of_a_linear_chain_is_layers_times_path_sum():
    # With |W| and an all-ones input every ReLU passes everything, so R = 1' |W2| |W1| 1 is the sum over
    # input->output paths of the product of weights; each layer's sum of |theta * dR/dtheta| equals R.
    # |W1| 1 = [3, 3.5, 2]; |W2| . that = 2*3 + 1*3.5 + 0.5*2 = 10.5; two layers -> 21.
    assert proxies.synflow(two_layer(), (2,)) == pytest.approx(21.0, rel=1e-12)


def test_synflow_ignores_batchnorm_and_leaves_the_model_untouched():
    net = two_layer(batchnorm=True)
    before = [p.detach().clone() for p in net.parameters()]
    assert proxies.synflow(net, (2,)) == pytest.approx(21.0, rel=1e-12)
    for p, q in zip(net.parameters(), before):
        assert torch.equal(p, q) and p.dtype == torch.float32


def test_naswot_kernel_of_two_codes():
    # Identity layer then ReLU: images (1,-1) and (1,1) have activation codes 10 and 11; they agree on one
    # unit, each agrees with itself on two: K = [[2,1],[1,2]], det 3.
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
    images = torch.tensor([[1.0, -1.0], [1.0, 1.0]])
    assert proxies.naswot(net, images) == pytest.approx(math.log(3.0), rel=1e-12)


def test_naswot_sums_the_kernel_over_relus():
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Identity(), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
    images = torch.tensor([[1.0, -1.0], [1.0, 1.0]])
    # The second ReLU sees the same codes, so K doubles: det [[4,2],[2,4]] = 12.
    assert proxies.naswot(net, images) == pytest.approx(math.log(12.0), rel=1e-12)


def _softmax_gradient(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dL/dW of the mean cross-entropy of a bias-free linear classifier: (softmax(Wx) - onehot(y)) x' / n."""
    logits = x @ w.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return p.T @ x / len(y)


def _linear_classifier():
    w = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]])
    x = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 1.0], [-2.0, 1.0, 0.0]])
    y = np.array([0, 1, 1])
    net = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor(w, dtype=torch.float32))
    return net, w, torch.tensor(x, dtype=torch.float32), x, torch.tensor(y), y


def test_snip_is_sum_of_abs_weight_times_gradient():
    net, w, xt, x, yt, y = _linear_classifier()
    expected = np.abs(w * _softmax_gradient(w, x, y)).sum()
    assert proxies.snip(net, xt, yt) == pytest.approx(expected, rel=1e-5)
    assert net.weight.grad is None  # no gradient left behind


def test_gradnorm_is_sum_of_layer_gradient_norms():
    net, w, xt, x, yt, y = _linear_classifier()
    expected = np.linalg.norm(_softmax_gradient(w, x, y))
    assert proxies.gradnorm(net, xt, yt) == pytest.approx(expected, rel=1e-5)


def test_param_and_flop_counts_by_hand():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    assert proxies.param_count(net) == 3 * 4 * 9 + 4 * 2 + 2
    # conv: 8*8 outputs x 4 channels x 27 MACs; linear: 2 outputs x 4 MACs
    assert proxies.flop_count(net, 8) == 8 * 8 * 4 * 27 + 2 * 4


def test_undefined_scores_rank_last():
    scores, replaced = proxies.finite_or_last(np.array([1.0, -np.inf, 3.0, np.nan]))
    assert replaced == 2
    assert scores[1] < 1.0 and scores[3] < 1.0 and np.isfinite(scores).all()


STRATEGIES = ("params", "flops", "synflow", "naswot", "snip", "gradnorm", "random")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_smoke_run_of_each_training_free_strategy(strategy, env_data, tmp_path):
    metrics = bench(BenchRequest(strategy=strategy, preset="smoke", runs_dir=tmp_path, progress=False))
    assert metrics["total_steps"] == 0
    assert metrics["metrics"]["num_archs"] == 20
    assert np.isfinite(metrics["metrics"]["kendall_tau"])
    summary = metrics["strategy_summary"]
    assert summary["proxy"] == strategy and summary["training_free"] is True
    assert summary["shape"]["channels"] == 4
    if strategy in ("naswot", "snip", "gradnorm"):
        assert summary["proxy_batch"]["images"] == 64


def _context(data_dir, seed=0):
    from harness.config import resolve
    from harness.data.tensors import DeviceData
    from harness.registry import SPACES
    from harness.strategies.base import StrategyContext

    cfg = resolve("smoke")
    space = SPACES.get("nb201")()
    data = DeviceData(cfg.data, "cpu", root=data_dir)
    shape = space.shape(num_classes=data.num_classes, **vars(cfg.shape))
    return StrategyContext(space, shape, cfg.train, data, torch.device("cpu"), seed, 0, progress=False), space


@pytest.mark.parametrize("strategy", ("synflow", "snip", "random"))
def test_scores_do_not_depend_on_order_or_company(strategy, data_dir):
    """Seeded per (run seed, architecture): another order or another set gives the same score per arch."""
    from harness.registry import STRATEGIES as registry
    from harness.config import build_options

    ctx, space = _context(data_dir)
    cls = registry.get(strategy)
    archs = [space.sample(np.random.default_rng(i)) for i in range(6)]
    first = cls(ctx, build_options(cls.Options, {}, strategy)).estimate(archs)["score"]
    again = cls(ctx, build_options(cls.Options, {}, strategy)).estimate(archs[::-1][:4])["score"]
    np.testing.assert_allclose(first[::-1][:4], again, rtol=1e-6)
    other_seed, _ = _context(data_dir, seed=1)
    moved = cls(other_seed, build_options(cls.Options, {}, strategy)).estimate(archs)["score"]
    assert not np.allclose(first, moved)


def test_proxy_batch_must_fit(env_data, tmp_path):
    with pytest.raises(HarnessError, match="batch_size"):
        bench(BenchRequest(strategy="naswot", preset="smoke", runs_dir=tmp_path, progress=False,
                           overrides=("strategy.naswot.batch_size=1",)))
    with pytest.raises(HarnessError, match="exceeds"):
        bench(BenchRequest(strategy="naswot", preset="smoke", runs_dir=tmp_path, progress=False,
                           overrides=("strategy.naswot.batch_size=100000",), name="too-big"))
