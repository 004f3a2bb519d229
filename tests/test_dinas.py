import json
import math

import pandas as pd
import pytest
import torch

from harness.config import build_options, resolve
from harness.data.tensors import DeviceData
from harness.errors import HarnessError
from harness.registry import SPACES, STRATEGIES
from harness.runs.run import BenchRequest, bench
from harness.spaces.nb201.arch import Arch
from harness.strategies.base import StrategyContext
from harness.strategies.dinas.projection import InputProjector
from harness.strategies.dinas.strategy import DinasOptions, DisturbanceImmune
from harness.strategies.ws import WsOptions


@pytest.mark.parametrize("values, fragment", [
    ({"alpha": -1.0}, "alpha=-1.0"), ({"variant": "owm"}, "'owm'"), ({"decay": 0.0}, "decay=0.0"),
    ({"layers": "convs"}, "'convs'"), ({"basis_size": 0}, "basis_size=0"), ({"start_fraction": 1.0}, "start_fraction"),
    ({"apply": "adam"}, "'adam'"), ({"measure_every": -1}, "measure_every=-1"), ({"rescale": 1}, "rescale=1"),
])
def test_bad_options_give_one_line(values, fragment):
    with pytest.raises(HarnessError) as err:
        build_options(DinasOptions, values, "dinas")
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_bad_option_on_the_command_line_fails_before_training(env_data, tmp_path):
    with pytest.raises(HarnessError, match="variant"):
        bench(BenchRequest("dinas", preset="smoke", runs_dir=tmp_path, progress=False, overrides=("strategy.dinas.variant=ogd",)))
    assert not any(tmp_path.iterdir())


def _built(name, options):
    cfg = resolve("smoke")
    space = SPACES.get("nb201")()
    data = DeviceData(cfg.data, "cpu")
    shape = space.shape(num_classes=data.num_classes, **vars(cfg.shape))
    ctx = StrategyContext(space, shape, cfg.train, data, torch.device("cpu"), 0, 20, False)
    cls = STRATEGIES.get(name)
    torch.manual_seed(0)  # the supernet's initialisation: equal across the strategies a test compares
    return cls(ctx, build_options(cls.Options, options, name)), data


def _strategy(variant, **options):
    return _built("dinas", {"variant": variant, **options})


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


def _weights(strategy):
    return {k: v.clone() for k, v in strategy.supernet.state_dict().items()}


def _train(strategy, data, steps, archs=None):
    for step in range(steps):
        strategy.train_step(step, *data.train_batch(0, step), None if archs is None else archs[step % len(archs)])


@pytest.mark.parametrize("rescale", [False, True])
def test_identity_projection_of_the_update_is_ws_bit_for_bit(env_data, monkeypatch, rescale):
    """apply='update' re-does torch's SGD step (weight decay, Nesterov momentum, scheduled lr) per projected
    tensor: with nothing projected away it must be ws exactly -- and the measurement (every step here,
    with its extra forward) must not move the trajectory."""
    monkeypatch.setattr(InputProjector, "project", lambda self, grad: grad)
    dinas, data = _strategy("input", apply="update", measure_every=1, rescale=rescale)
    ws, _ = _built("ws", {})
    _train(dinas, data, 8)
    _train(ws, data, 8)
    assert dinas.optimizer.param_groups[0]["momentum"] == 0.9 and dinas.optimizer.param_groups[0]["nesterov"]
    a, b = _weights(dinas), _weights(ws)
    assert all(torch.equal(a[k], b[k]) for k in a)
    summary = dinas.summary()
    assert summary["measured_steps"] == 7
    assert summary["protection"] == pytest.approx(1.0, abs=1e-5) and summary["mean_kept_grad_norm"] == pytest.approx(1.0)


@pytest.mark.parametrize("variant, apply, source", [
    ("input", "update", "path"), ("input", "sgd", "path"), ("input", "gradient", "path"), ("grad", "update", "path"),
    ("input", "update", "unrelated"),
])
def test_measurement_does_not_change_the_trajectory(env_data, variant, apply, source):
    measured, data = _strategy(variant, apply=apply, measure_every=1, absorb_source=source)
    plain, _ = _strategy(variant, apply=apply, measure_every=0, absorb_source=source)
    _train(measured, data, 6)
    _train(plain, data, 6)
    a, b = _weights(measured), _weights(plain)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert measured.summary()["measured_steps"] == 5 and plain.summary()["protection"] is None


# Four paths that all use cell 0's edge-0 3x3 conv, with different ops after it.
PATHS = [Arch((3, 0, 0, 0, 1, 0)), Arch((3, 1, 0, 0, 4, 0)), Arch((3, 4, 2, 0, 1, 0)), Arch((3, 0, 0, 1, 4, 0))]


def _response_change_vs_ws(apply):
    """||dW X_prev|| / ||dW_ws X_prev|| for the shared conv after three earlier paths, with the shipped optimiser
    (momentum 0.9, Nesterov, weight decay 5e-4): X_prev = every input position the previous path fed it,
    dW_ws = the update torch's SGD (ws) takes from the same state, batch and path."""
    strategy, data = _strategy("input", alpha=1e-3, decay=1.0, layers="cells", apply=apply, measure_every=1)
    group = strategy.optimizer.param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.9, True, 5e-4)
    conv = strategy.supernet.layers[0].edges[0]["nor_conv_3x3"][1]
    captured = []
    handle = conv.register_forward_pre_hook(lambda m, args: captured.append(args[0].detach().clone()))
    _train(strategy, data, 3, PATHS)
    handle.remove()
    previous = captured[-1]
    ws, _ = _built("ws", {})
    ws.load_state_dict(strategy.state_dict())
    ws_conv = ws.supernet.layers[0].edges[0]["nor_conv_3x3"][1]
    start = conv.weight.detach().clone()
    batch = data.train_batch(0, 3)
    ws.train_step(3, *batch, PATHS[3])
    strategy.train_step(3, *batch, PATHS[3])
    moved = torch.nn.functional.conv2d(previous, conv.weight.detach() - start, padding=1).norm()
    moved_ws = torch.nn.functional.conv2d(previous, ws_conv.weight.detach() - start, padding=1).norm()
    return float(moved / moved_ws), strategy.summary()


@pytest.mark.parametrize("apply", ["update", "sgd"])
def test_projected_update_protects_the_previous_paths_inputs_with_the_shipped_optimiser(env_data, apply):
    ratio, summary = _response_change_vs_ws(apply)
    assert ratio < PROTECTED
    # The absorbed rows are protected by construction: the run's sanity check says so, as the test does.
    assert summary["sanity_check_absorbed_rows_protection"] < PROTECTED
    assert summary["sanity_check_absorbed_rows_selectivity"] < 0.1
    # Held-out rows are a measurement, not a construction: at this shape and strictness they are protected about
    # as much as fresh rows (both well below ws), so selectivity on them is ~1, far above the absorbed rows' figure.
    assert summary["protection"] < 0.5 and summary["selectivity"] > 10 * summary["sanity_check_absorbed_rows_selectivity"]


def test_projecting_the_gradient_leaks_through_momentum_and_fails_the_same_check(env_data):
    """The check above can catch the leak: projecting only the loss gradient lets the momentum buffer carry
    earlier paths' gradients into the protected directions."""
    ratio, summary = _response_change_vs_ws("gradient")
    assert ratio > PROTECTED
    assert summary["sanity_check_absorbed_rows_protection"] > PROTECTED and summary["protection"] > PROTECTED


PROTECTED = 0.05


def test_dinas_resume_repeats_the_uninterrupted_run(env_data, tmp_path, monkeypatch):
    overrides = ("train.epochs=2", "strategy.dinas.measure_every=3", "strategy.dinas.apply=sgd")
    straight = bench(BenchRequest("dinas", preset="smoke", runs_dir=tmp_path, progress=False, name="straight", overrides=overrides))
    original = DisturbanceImmune.train_step

    def dies_at_step_11(self, step, images, labels, arch=None):
        if step == 11:
            raise KeyboardInterrupt
        return original(self, step, images, labels, arch)

    monkeypatch.setattr(DisturbanceImmune, "train_step", dies_at_step_11)
    with pytest.raises(KeyboardInterrupt):
        bench(BenchRequest("dinas", preset="smoke", runs_dir=tmp_path, progress=False, name="cut", overrides=overrides))
    monkeypatch.setattr(DisturbanceImmune, "train_step", original)
    resumed = bench(BenchRequest("dinas", preset="smoke", runs_dir=tmp_path, progress=False, name="cut", overrides=overrides, resume=True))
    assert (tmp_path / "straight" / "predictions.csv").read_bytes() == (tmp_path / "cut" / "predictions.csv").read_bytes()
    for key in ("protection", "selectivity", "mean_kept_grad_norm", "measured_steps", "projected_steps"):
        assert resumed["strategy_summary"][key] == straight["strategy_summary"][key], key
    assert straight["strategy_summary"]["measured_steps"] > 0


def test_ws_lr_scale_scales_the_whole_schedule_and_is_recorded(env_data):
    with pytest.raises(HarnessError, match="lr_scale=0.0"):
        build_options(WsOptions, {"lr_scale": 0.0}, "ws")
    scaled, data = _built("ws", {"lr_scale": 0.25})
    plain, _ = _built("ws", {})
    assert scaled.optimizer.param_groups[0]["lr"] == pytest.approx(0.25 * plain.optimizer.param_groups[0]["lr"])
    _train(scaled, data, 3)
    _train(plain, data, 3)
    assert scaled.optimizer.param_groups[0]["lr"] == pytest.approx(0.25 * plain.optimizer.param_groups[0]["lr"])
    assert scaled.summary() == {"control": "parameter-space step match", "lr_scale": 0.25, "function_match": 1.0,
                                "lr": 0.25 * 0.05, "lr_min": 0.0}


@pytest.mark.parametrize("variant", ["input", "grad"])
def test_smoke_run(env_data, tmp_path, variant):
    metrics = bench(BenchRequest("dinas", preset="smoke", runs_dir=tmp_path, progress=False, name=variant,
                                 overrides=(f"strategy.dinas.variant={variant}",)))
    summary = metrics["strategy_summary"]
    assert summary["options"]["variant"] == variant
    assert summary["projected_steps"] == metrics["total_steps"]
    assert 0 < summary["mean_kept_grad_norm"] < 1 and summary["projector_bytes"] > 0
    assert summary["options"]["apply"] == "update" and summary["measured_steps"] > 0
    for key in ("protection", "selectivity", "protection_fresh"):
        assert 0 < summary[key] < 10, key  # finite ratios: NaN fails this
    record = json.loads((tmp_path / variant / "config.json").read_text())
    assert record["config"]["strategy"] == {"dinas": {"variant": variant}}
    predictions = pd.read_csv(tmp_path / variant / "predictions.csv")
    tau = metrics["metrics"]["kendall_tau"]  # Kendall's tau of the run's own predictions (NaN fails)
    assert math.isfinite(tau) and tau == pytest.approx(predictions["estimate"].corr(predictions["ground_truth"], method="kendall"))


@pytest.mark.parametrize("layer", ["conv", "linear"])
def test_held_out_rows_are_rows_absorption_did_not_draw(env_data, layer):
    """Protection is measured on rows of the previous path's inputs that the projector did not absorb: no
    held-out row equals an absorbed one, and the absorbed rows are exactly what absorption draws."""
    strategy, _ = _strategy("input")
    torch.manual_seed(1)
    if layer == "conv":
        module = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
        x = torch.randn(4, 3, 6, 6)  # 144 positions, 32 drawn: collisions of independent draws would be common
    else:
        module = torch.nn.Linear(5, 2)
        x = torch.randn(48, 5)  # 48 rows, 32 drawn: an independent draw of 32 would share ~21 of them
    step = 7
    drawn, heldout = strategy._measurement_rows(module, x, step)
    strategy._generators = {}
    assert torch.equal(drawn, strategy._rows(module, x, strategy._generator(3, step)))  # ABSORB_KEY's draws
    assert len(heldout) == (32 if layer == "conv" else 16)
    assert not (torch.cdist(heldout, drawn).min(dim=1).values < 1e-6).any()


def test_ws_controls_are_validated_and_exclusive():
    for values, fragment in [({"function_match": 0.0}, "function_match=0.0"), ({"direction_control": "yes"}, "direction_control"),
                             ({"lr_scale": 0.5, "function_match": 0.2}, "lr_scale and function_match")]:
        with pytest.raises(HarnessError, match=fragment) as err:
            build_options(WsOptions, values, "ws")
        assert "\n" not in str(err.value)


def test_function_match_scales_the_step_and_is_recorded(env_data):
    matched, data = _built("ws", {"function_match": 0.14})
    plain, _ = _built("ws", {})
    assert matched.optimizer.param_groups[0]["lr"] == pytest.approx(0.14 * plain.optimizer.param_groups[0]["lr"])
    start = _weights(matched)
    matched.train_step(0, *data.train_batch(0, 0), PATHS[0])
    plain.train_step(0, *data.train_batch(0, 0), PATHS[0])
    conv = "layers.0.edges.0.nor_conv_3x3.1.weight"
    moved, moved_ws = (s.supernet.state_dict()[conv] - start[conv] for s in (matched, plain))
    # One step from the same state: the output change on any input is 0.14x ws's (the update is linear in lr).
    assert float(moved.norm() / moved_ws.norm()) == pytest.approx(0.14, rel=1e-4)
    assert matched.summary()["control"] == "function-space step match" and matched.summary()["function_match"] == 0.14


def test_direction_control_projects_against_unrelated_inputs(env_data):
    control, data = _built("ws", {"direction_control": True})
    dinas, _ = _strategy("input")
    assert isinstance(control, DisturbanceImmune) and control.name == "ws"
    assert control.options.absorb_source == "unrelated"
    _train(control, data, 4, PATHS)
    _train(dinas, data, 4, PATHS)
    summary = control.summary()
    assert summary["control"] == "direction" and summary["ws_options"]["direction_control"] is True
    assert 0 < summary["mean_kept_grad_norm"] < 1  # the step is projected...
    a, b = control.projectors, dinas.projectors
    shared = set(a) & set(b)
    # ...by projectors built from other inputs than the trained paths' (dinas absorbs those).
    assert shared and all(not torch.allclose(a[k].matrix, b[k].matrix) for k in shared)


@pytest.mark.parametrize("option", ["strategy.ws.function_match=0.14", "strategy.ws.direction_control=true"])
def test_controls_run_on_smoke(env_data, tmp_path, option):
    metrics = bench(BenchRequest("ws", preset="smoke", runs_dir=tmp_path, progress=False, name="control", overrides=(option,)))
    record = json.loads((tmp_path / "control" / "config.json").read_text())
    key, value = option.split("=")
    assert str(record["config"]["strategy"]["ws"][key.split(".")[-1]]).lower() == value
    assert metrics["strategy_summary"]["control"] in ("function-space step match", "direction")
    assert math.isfinite(metrics["metrics"]["kendall_tau"])


def test_function_match_calibration_uses_tuning_seeds_only_and_averages_fresh_ratios():
    from harness.strategies.dinas.calibrate import function_match_value

    with pytest.raises(HarnessError, match="tuning seeds >= 100"):
        function_match_value({3: {"protection_fresh": 0.1}, 100: {"protection_fresh": 0.2}})
    with pytest.raises(HarnessError, match="protection_fresh=None"):
        function_match_value({100: {"protection_fresh": None}})
    result = function_match_value({100: {"protection_fresh": 0.12, "mean_kept_grad_norm": 0.3},
                                   101: {"protection_fresh": 0.16, "mean_kept_grad_norm": 0.2}})
    assert result["function_match"] == 0.14 and result["spread"] == (0.12, 0.16)


def test_calibration_script_on_smoke(env_data, tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "calibrate_dinas_control.py"
    spec = importlib.util.spec_from_file_location("calibrate_dinas_control", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--preset", "smoke", "--seeds", "5", "--runs-dir", str(tmp_path)]) == 2  # a verdict seed: refused
    assert not any(tmp_path.iterdir()) and "tuning seeds" in capsys.readouterr().err
    assert script.main(["--preset", "smoke", "--seeds", "100", "--runs-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    fresh = json.loads((tmp_path / "dinas-nb201-smoke-seed100" / "metrics.json").read_text())["strategy_summary"]["protection_fresh"]
    assert f"function_match = {round(fresh, 3)}" in printed
    assert script.main(["--preset", "smoke", "--seeds", "100", "--runs-dir", str(tmp_path), "--no-run"]) == 0  # reuses the run


def test_selectivity_compares_held_out_and_fresh_rows_of_the_same_layers(env_data):
    """Smoke's classifier sees a batch of 32 rows and absorbs all 32: it has no held-out rows, so it must not
    enter selectivity's denominator either."""
    strategy, data = _strategy("input", measure_every=1)
    _train(strategy, data, 5, PATHS)
    ratios = strategy.meter.means()
    assert strategy.meter.counts["heldout"] == strategy.meter.counts["fresh_where_heldout"] < strategy.meter.counts["fresh"]
    summary = strategy.summary()
    assert summary["selectivity"] == pytest.approx(ratios["heldout"] / ratios["fresh_where_heldout"])
    assert summary["protection_fresh"] == pytest.approx(ratios["fresh"])
