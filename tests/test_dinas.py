import json
import math

import pandas as pd
import pytest
import torch

from harness.config import build_options, resolve
from harness.data.tensors import DeviceData
from harness.errors import HarnessError
from harness.registry import SPACES, STRATEGIES
from harness.run import BenchRequest, bench
from harness.spaces.nb201.arch import Arch
from harness.strategies.base import StrategyContext
from harness.strategies.dinas.strategy import DinasOptions


@pytest.mark.parametrize("values, fragment", [
    ({"alpha": -1.0}, "alpha=-1.0"), ({"variant": "owm"}, "'owm'"), ({"decay": 0.0}, "decay=0.0"),
    ({"layers": "convs"}, "'convs'"), ({"basis_size": 0}, "basis_size=0"), ({"start_fraction": 1.0}, "start_fraction"),
])
def test_bad_options_give_one_line(values, fragment):
    with pytest.raises(HarnessError) as err:
        build_options(DinasOptions, values, "dinas")
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_bad_option_on_the_command_line_fails_before_training(env_data, tmp_path):
    with pytest.raises(HarnessError, match="variant"):
        bench(BenchRequest("dinas", preset="smoke", runs_dir=tmp_path, progress=False, overrides=("strategy.dinas.variant=ogd",)))
    assert not any(tmp_path.iterdir())


def _strategy(variant, **options):
    cfg = resolve("smoke")
    space = SPACES.get("nb201")()
    data = DeviceData(cfg.data, "cpu")
    shape = space.shape(num_classes=data.num_classes, **vars(cfg.shape))
    ctx = StrategyContext(space, shape, cfg.train, data, torch.device("cpu"), 0, 20, False)
    return STRATEGIES.get("dinas")(ctx, build_options(DinasOptions, {"variant": variant, **options}, "dinas")), data


@pytest.mark.parametrize("variant", ["input", "grad"])
def test_only_the_paths_weights_get_projectors_and_state_round_trips(env_data, variant):
    strategy, data = _strategy(variant)
    arch = Arch((3, 0, 0, 0, 1, 0))  # conv3x3 on 1<-0, skip on 3<-1: the cells' only convs are the edge-0 3x3s
    images, labels = data.train_batch(0, 0)
    strategy.train_step(0, images, labels, arch)
    cell_projectors = {name for name in strategy.projectors if name.startswith("layers.") and ".edges." in name}
    assert cell_projectors and all(".edges.0.nor_conv_3x3." in name for name in cell_projectors)
    clone, _ = _strategy(variant)
    clone.load_state_dict(strategy.state_dict())
    for name, projector in strategy.projectors.items():
        for key, value in projector.state_dict().items():
            assert torch.equal(clone.projectors[name].state_dict()[key], value)


def _relative_change_of_shared_conv(alpha):
    strategy, data = _strategy("input", alpha=alpha, decay=1.0, input_samples=32, layers="cells")
    first, second = Arch((3, 0, 0, 0, 1, 0)), Arch((3, 0, 0, 0, 4, 0))  # both use cell edge-0 3x3 convs
    conv = strategy.supernet.layers[0].edges[0]["nor_conv_3x3"][1]
    captured = []
    handle = conv.register_forward_pre_hook(lambda m, args: captured.append(args[0].detach().clone()))
    images, labels = data.train_batch(0, 0)
    strategy.train_step(0, images, labels, first)
    handle.remove()
    before = torch.nn.functional.conv2d(captured[0], conv.weight.detach(), padding=1)
    # Plain SGD on the next path so that momentum from step 0 (not projected against itself) does not blur the check.
    strategy.optimizer.param_groups[0]["momentum"] = 0.0
    strategy.optimizer.state.clear()
    images, labels = data.train_batch(0, 1)
    weight_before = conv.weight.detach().clone()
    strategy.optimizer.param_groups[0]["weight_decay"] = 0.0
    strategy.train_step(1, images, labels, second)
    assert not torch.equal(conv.weight, weight_before)
    after = torch.nn.functional.conv2d(captured[0], conv.weight.detach(), padding=1)
    return float((after - before).abs().mean() / before.abs().mean())


def test_input_projection_protects_an_earlier_paths_layer_outputs(env_data):
    """With a tiny alpha and no decay, a later path's update barely moves a shared conv's response to the
    earlier path's inputs; with a huge alpha (no protection, i.e. ws) the same update moves it a lot."""
    protected = _relative_change_of_shared_conv(1e-4)
    unprotected = _relative_change_of_shared_conv(1e6)
    # Only 32 patches were absorbed; the earlier inputs outside their span keep some freedom.
    assert protected < 0.2 * unprotected


@pytest.mark.parametrize("variant", ["input", "grad"])
def test_smoke_run(env_data, tmp_path, variant):
    metrics = bench(BenchRequest("dinas", preset="smoke", runs_dir=tmp_path, progress=False, name=variant,
                                 overrides=(f"strategy.dinas.variant={variant}",)))
    summary = metrics["strategy_summary"]
    assert summary["options"]["variant"] == variant
    assert summary["projected_steps"] == metrics["total_steps"]
    assert 0 < summary["mean_kept_grad_norm"] < 1 and summary["projector_bytes"] > 0
    record = json.loads((tmp_path / variant / "config.json").read_text())
    assert record["config"]["strategy"] == {"dinas": {"variant": variant}}
    predictions = pd.read_csv(tmp_path / variant / "predictions.csv")
    tau = metrics["metrics"]["kendall_tau"]  # Kendall's tau of the run's own predictions (NaN fails)
    assert math.isfinite(tau) and tau == pytest.approx(predictions["estimate"].corr(predictions["ground_truth"], method="kendall"))
