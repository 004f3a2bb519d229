"""Every strategy and feature creates its tensors on an explicit device (see tests/device_guard.py).

CPU-only CI cannot put the model on a GPU, so it checks the cause instead of the crash: each strategy's whole
smoke run (construction, training steps, hooks, estimation) runs under a guard that records every tensor
factory called from harness code without a device. One such call is what makes `flops`, `synflow` or
`naswot` fail on CUDA; the test fails naming its file and line.
"""
import pytest
import torch

from device_guard import ImplicitDeviceGuard
from harness.registry import STRATEGIES
from harness.runs.run import BenchRequest, bench

FAST = {
    "fewshot": ("strategy.fewshot.split_fractions=[0.4, 0.6]",),
    "gm": ("strategy.gm.repeats=1",),
    "naslid": ("strategy.naslid.repeats=1", "strategy.naslid.batch_size=32", "strategy.naslid.k=5"),
}
SHORT = ("train.steps=6", "train.checkpoint_every=3", "eval.num_archs=6", "eval.bootstrap=1")
DISTURBANCE = ("features.disturbance.enabled=true", "features.disturbance.num_probes=3", "features.disturbance.events=2",
               "features.disturbance.lags=[1, 2]", "features.disturbance.snapshots=2", "features.disturbance.first_fraction=0.0")


def _guarded_run(tmp_path, strategy: str, overrides: tuple) -> set[str]:
    guard = ImplicitDeviceGuard()
    with guard:
        bench(BenchRequest(strategy=strategy, preset="smoke", runs_dir=tmp_path, progress=False, device="cpu",
                           overrides=SHORT + FAST.get(strategy, ()) + overrides))
    return guard.findings


def test_guard_sees_an_implicit_device_and_accepts_an_explicit_one():
    from harness.spaces.nb201 import network

    guard = ImplicitDeviceGuard()
    model = torch.nn.Linear(2, 2)
    with guard:
        network.count_parameters(model)
        torch.zeros(2, device="cpu")  # this file is not harness code either way
    assert guard.findings == set()
    source = "import torch\ndef make():\n    return torch.ones(3)\n"
    scope = {}
    exec(compile(source, network.__file__, "exec"), scope)  # as if written in harness code
    with guard:
        scope["make"]()
    assert any("torch.ones" in f for f in guard.findings)


@pytest.mark.parametrize("strategy", STRATEGIES.names())
def test_strategy_creates_no_tensor_on_an_implicit_device(tmp_path, env_data, strategy):
    assert _guarded_run(tmp_path, strategy, ()) == set()


def test_disturbance_feature_creates_no_tensor_on_an_implicit_device(tmp_path, env_data):
    assert _guarded_run(tmp_path, "ws", DISTURBANCE) == set()
