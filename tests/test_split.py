import json

import pandas as pd
import pytest
import torch

from harness.config import build_options, resolve
from harness.data.tensors import DeviceData
from harness.errors import HarnessError
from harness.registry import SPACES, STRATEGIES
from harness.runs.run import BenchRequest, bench
from harness.spaces.nb201.arch import NUM_ARCHS, all_archs
from harness.strategies.base import StrategyContext
from harness.strategies.split.base import SplitStrategy, plan_segments

# Small criteria so the smoke runs take seconds; splits at 40% and 60% of smoke's 8 steps (steps 3 and 5).
FAST = {
    "fewshot": ("strategy.fewshot.split_fractions=[0.4, 0.6]",),
    "gm": ("strategy.gm.repeats=1",),
    "naslid": ("strategy.naslid.repeats=1", "strategy.naslid.batch_size=32", "strategy.naslid.k=5"),
}


def build(data_dir, strategy: str, overrides=()):
    cfg = resolve("smoke", tuple(FAST[strategy]) + tuple(overrides))
    data = DeviceData(cfg.data, "cpu", root=data_dir)
    space = SPACES.get("nb201")()
    shape = space.shape(num_classes=data.num_classes, **vars(cfg.shape))
    total = cfg.train.steps or cfg.train.epochs * data.steps_per_epoch
    ctx = StrategyContext(space, shape, cfg.train, data, torch.device("cpu"), 0, total, False)
    cls = STRATEGIES.get(strategy)
    return cls(ctx, build_options(cls.Options, cfg.strategy.get(strategy, {}), strategy))


def train_all(strategy) -> None:
    for step in range(strategy.training_steps()):
        strategy.train_step(step, *strategy.ctx.data.train_batch(0, step))


def test_segments_account_for_every_step():
    equal = plan_segments(100, [40, 60], [2, 2], "equal")
    assert [(s.start, s.end, s.leaves) for s in equal] == [(0, 40, 1), (40, 60, 2), (60, 100, 4)]
    native = plan_segments(100, [40, 60], [2, 2], "native")
    assert native[-1].end == 40 + 2 * 20 + 4 * 40
    assert [(s.lineage_start, s.lineage_end) for s in native] == [(0, 40), (40, 60), (60, 100)]
    assert plan_segments(100, [50], [5], "native")[-1].end == 50 + 5 * 50
    with pytest.raises(HarnessError, match="strictly increasing"):
        plan_segments(100, [60, 40], [2, 2], "equal")
    with pytest.raises(HarnessError, match="within 0..99"):
        plan_segments(100, [100], [2], "equal")


@pytest.mark.parametrize("name,leaves", [("fewshot", 25), ("gm", 4), ("naslid", 4)])
def test_masks_route_every_architecture_to_exactly_one_sub_supernet(data_dir, name, leaves):
    strategy = build(data_dir, name)
    train_all(strategy)
    assert len(strategy.leaves) == leaves
    masks = [strategy.nodes[i].mask for i in strategy.leaves]
    holders = [sum(all(op in m[e] for e, op in enumerate(a.ops)) for m in masks) for a in all_archs()]
    assert len(holders) == NUM_ARCHS == 15625
    assert set(holders) == {1}
    if name == "fewshot":  # exhaustive split of two edges: 25 equal regions of 625 architectures
        sizes = {i: 0 for i in strategy.leaves}
        for a in all_archs():
            sizes[strategy._leaf_for(a).id] += 1
        assert set(sizes.values()) == {625}
    # The criteria split two different edges on every lineage.
    assert all(len(set(strategy.nodes[i].split_edges)) == 2 for i in strategy.leaves)


@pytest.mark.parametrize("name", ["gm", "naslid"])
def test_criterion_leaves_weights_and_running_stats_untouched(data_dir, name):
    torch.manual_seed(0)
    strategy = build(data_dir, name, ("shape.bn_mode=running",))
    for step in range(3):
        strategy.train_step(step, *strategy.ctx.data.train_batch(0, step))
    root = strategy.nodes[0]
    before = {k: v.clone() for k, v in root.supernet.state_dict().items()}
    decision = strategy.split_decision(root, 3)
    after = root.supernet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert sorted(op for g in decision.groups for op in g) == [0, 1, 2, 3, 4]
    assert sorted(len(g) for g in decision.groups) == [2, 3]
    for edge in decision.details["edges"].values():
        sim = torch.tensor(edge["similarity"])
        # recorded rounded to 6 decimals, so symmetric to within 1e-6
        assert torch.allclose(sim, sim.T, rtol=0, atol=2e-6) and torch.allclose(sim.diagonal(), torch.ones(5), atol=1e-6)


def test_bad_options_fail_in_one_line(data_dir):
    with pytest.raises(HarnessError, match="accepted: equal, native"):
        build(data_dir, "gm", ("strategy.gm.budget=double",))
    with pytest.raises(HarnessError, match="split_fractions value 1.5"):
        build(data_dir, "gm", ("strategy.gm.split_fractions=[1.5]",))
    with pytest.raises(HarnessError, match="accepted: max_cross, max_intra, min_cross"):
        build(data_dir, "naslid", ("strategy.naslid.edge_rule=best",))
    with pytest.raises(HarnessError, match="7 split levels"):
        build(data_dir, "gm", ("strategy.gm.split_epochs=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]",))


def _bench(tmp_path, name, overrides=(), run_name=None):
    req = BenchRequest(name, preset="smoke", overrides=tuple(FAST[name]) + tuple(overrides), runs_dir=tmp_path,
                       name=run_name, progress=False)
    return bench(req), req


@pytest.mark.parametrize("name,leaves", [("fewshot", 5), ("gm", 4), ("naslid", 4)])
def test_smoke_run_splits_and_records_equal_budget(env_data, tmp_path, name, leaves):
    overrides = ("strategy.fewshot.split_fractions=[0.5]",) if name == "fewshot" else ()
    metrics, _ = _bench(tmp_path, name, overrides, "run")
    summary = metrics["strategy_summary"]
    assert len(summary["leaves"]) == leaves
    assert summary["decisions"] and all("edge" in d and d["groups"] for d in summary["decisions"])
    steps = summary["steps"]
    assert steps["total_optimizer_steps"] == steps["ws_budget"] == steps["sum_by_sub_supernet"] == metrics["total_steps"]
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert set(predictions["sub_supernet"]) <= {leaf["id"] for leaf in summary["leaves"]}


def test_native_budget_gives_each_child_the_whole_segment(env_data, tmp_path):
    metrics, _ = _bench(tmp_path, "fewshot", ("strategy.fewshot.split_fractions=[0.5]", "strategy.fewshot.budget=native"))
    steps = metrics["strategy_summary"]["steps"]
    assert steps["ws_budget"] == 8
    assert steps["total_optimizer_steps"] == 4 + 5 * 4 == steps["sum_by_sub_supernet"] == metrics["total_steps"]
    assert all(leaf["steps"] == 4 for leaf in metrics["strategy_summary"]["leaves"])


@pytest.mark.parametrize("stop_at", [4, 7])  # checkpoint (every 2 steps) between the two splits / after both
def test_resume_after_a_split_repeats_the_uninterrupted_run(env_data, tmp_path, monkeypatch, stop_at):
    settings = ("train.checkpoint_every=2",)
    reference, _ = _bench(tmp_path, "gm", settings, "whole")
    original = SplitStrategy.train_step

    def interrupted(self, step, *args, **kwargs):
        if step == stop_at:
            raise KeyboardInterrupt
        return original(self, step, *args, **kwargs)

    monkeypatch.setattr(SplitStrategy, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _bench(tmp_path, "gm", settings, "cut")
    assert json.loads((tmp_path / "cut" / "status.json").read_text())["state"] == "interrupted"  # Ctrl-C is recorded as such (issue 12)
    checkpoint = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)
    assert checkpoint["step"] == stop_at // 2 * 2
    assert len(checkpoint["strategy"]["leaves"]) == (2 if stop_at == 4 else 4)
    monkeypatch.setattr(SplitStrategy, "train_step", original)
    req = BenchRequest("gm", preset="smoke", overrides=tuple(FAST["gm"]) + settings, runs_dir=tmp_path, name="cut",
                       resume=True, progress=False)
    resumed = bench(req)
    assert resumed["strategy_summary"]["decisions"] == reference["strategy_summary"]["decisions"]
    a = pd.read_csv(tmp_path / "whole" / "predictions.csv")
    b = pd.read_csv(tmp_path / "cut" / "predictions.csv")
    assert a["estimate"].tolist() == b["estimate"].tolist()
    assert a["sub_supernet"].tolist() == b["sub_supernet"].tolist()


def test_warm_up_repeats_ws_step_for_step(data_dir):
    torch.manual_seed(0)
    split = build(data_dir, "gm")
    ws_cls = STRATEGIES.get("ws")
    torch.manual_seed(0)
    ws = ws_cls(split.ctx, build_options(ws_cls.Options, {}, "ws"))
    for step in range(split.split_steps[0]):
        batch = split.ctx.data.train_batch(0, step)
        assert split.train_step(step, *batch) == ws.train_step(step, *batch)
    root = split.nodes[0].supernet.state_dict()
    assert all(torch.equal(v, root[k]) for k, v in ws.supernet.state_dict().items())


@pytest.mark.parametrize("child_init", ["inherit", "reinit"])
def test_children_inherit_or_restart_weights(data_dir, child_init):
    s = build(data_dir, "fewshot", ("strategy.fewshot.split_fractions=[0.5]", f"strategy.fewshot.child_init={child_init}"))
    for step in range(4):
        s.train_step(step, *s.ctx.data.train_batch(0, step))
    parent = {k: v.clone() for k, v in s.nodes[0].supernet.state_dict().items()}
    s.train_step(4, *s.ctx.data.train_batch(0, 4))  # splits, then trains the first child only
    untrained = [s.nodes[i].supernet.state_dict() for i in s.leaves[1:]]
    same = [all(torch.equal(parent[k], st[k]) for k in parent) for st in untrained]
    assert all(same) if child_init == "inherit" else not any(same)


@pytest.mark.parametrize("mode", ["continue", "restart"])
def test_learning_rate_after_a_split(data_dir, mode):
    import math

    s = build(data_dir, "fewshot", ("strategy.fewshot.split_fractions=[0.5]", f"strategy.fewshot.lr_after_split={mode}"))
    for step in range(5):  # split at step 4; step 4 trains the first child
        s.train_step(step, *s.ctx.data.train_batch(0, step))
    lr = s.nodes[s.leaves[0]].optimizer.param_groups[0]["lr"]
    base, floor, total = s.ctx.train.lr, s.ctx.train.lr_min, s.ctx.total_steps
    expected = floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * 4 / total)) if mode == "continue" else base
    assert lr == pytest.approx(expected)


@pytest.mark.parametrize("layers,count", [("cells+reductions", 17), ("cells", 15), ("all", 18)])
def test_naslid_profile_covers_the_search_cells_and_reduction_blocks_at_n5(layers, count):
    from harness.spaces.nb201.arch import Arch
    from harness.spaces.nb201.network import NB201Network, NetworkShape
    from harness.strategies.split.naslid import feature_layers, lid_profiles

    net = NB201Network(NetworkShape(channels=4, cells_per_stage=5))
    keep = feature_layers(net, layers)
    assert len(keep) == count
    kinds = [type(net.layers[i - 1]).__name__ if i else "stem" for i in keep]
    assert kinds.count("ResBlock") == (0 if layers == "cells" else 2) and ("stem" in kinds) == (layers == "all")
    x = torch.randn(12, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    profile = lid_profiles(net.eval(), 0, [1, 2, 3], x, Arch((3,) * 6), k=4, layers=layers)
    assert profile.shape == (3, count) and bool(torch.isfinite(profile).all())


def test_naslid_default_layers_and_gm_default_repeats_are_the_references(data_dir):
    from harness.strategies.split.gm import GMOptions
    from harness.strategies.split.naslid import NASLIDOptions

    assert NASLIDOptions().layers == "cells+reductions"
    assert GMOptions().repeats == 100  # WS-GM/nasbench201/train_search.py: repeat = 100
    with pytest.raises(HarnessError, match="repeats=0 must be a positive integer"):
        build(data_dir, "gm", ("strategy.gm.repeats=0",))
    with pytest.raises(HarnessError, match="batches"):  # the old name of `repeats` is refused, not silently ignored
        build(data_dir, "gm", ("strategy.gm.batches=3",))


@pytest.mark.parametrize("name", ["gm", "naslid"])
def test_criterion_settings_are_recorded(env_data, tmp_path, name):
    metrics, _ = _bench(tmp_path, name)
    criterion = metrics["strategy_summary"]["criterion"]
    assert criterion["repeats"] == 1 and criterion["edge_rule"] == ("min_cross" if name == "gm" else "max_intra")
    if name == "naslid":
        # smoke: N = 1 cell per stage -> 3 cells + 2 reduction blocks
        assert criterion["layers"] == "cells+reductions" and criterion["lid_features"] == 5 and criterion["k"] == 5
