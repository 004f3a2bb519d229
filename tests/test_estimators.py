"""Estimators: test-time flips, per-batch tallies, the EMA of the weights, every estimator in one run, and
the planted faults of the regression selftest really changing what they claim to change."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from harness.training import evaluation
from harness.gate import selftest as gate_selftest
from harness.errors import HarnessError
from harness.registry import SPACES
from harness.runs.run import BenchRequest, bench
from harness.spaces.nb201.arch import CONV3
from harness.training.weight_average import WeightAverage

SPACE = SPACES.get("nb201")()


def _net(bn_mode="batch"):
    torch.manual_seed(0)
    return SPACE.build_supernet(SPACE.shape(num_classes=10, channels=4, cells_per_stage=1, bn_mode=bn_mode)).eval()


def _batches(rows=24, count=2, res=8):
    g = torch.Generator().manual_seed(7)
    return [(torch.randn(rows, 3, res, res, generator=g), torch.randint(0, 10, (rows,), generator=g)) for _ in range(count)]


def _archs(n=9):
    return [SPACE.sample(np.random.default_rng([11, i])) for i in range(n)]


def test_flip_averages_the_softmax_of_each_image_and_its_mirror():
    net, archs, batches = _net(), _archs(3), _batches()
    tally = evaluation.tally_archs(net, archs, batches, flip=True)
    with torch.no_grad():
        for i, arch in enumerate(archs):
            correct, loss = 0, 0.0
            for x, y in batches:
                p = (F.softmax(net(x, arch), -1) + F.softmax(net(x.flip(-1), arch), -1)) / 2
                correct += int((p.argmax(-1) == y).sum())
                loss += float(-torch.log(p[torch.arange(len(y)), y]).sum())
            total = sum(len(y) for _, y in batches)
            assert tally.accuracy(flip=True)[i] == pytest.approx(100.0 * correct / total)
            assert tally.mean_loss(flip=True)[i] == pytest.approx(loss / total, rel=1e-5)
    # and it is a different estimate from the plain one
    assert not np.allclose(tally.mean_loss(flip=True), tally.mean_loss())


@pytest.mark.parametrize("per_pass", [1, 4])
def test_batched_and_one_at_a_time_tallies_agree_with_flips(per_pass):
    net, archs, batches = _net(), _archs(), _batches()
    one = evaluation.tally_archs(net, archs, batches, flip=True)
    many = evaluation.tally_many(net, archs, batches, per_pass=per_pass, flip=True)
    np.testing.assert_array_equal(one.correct, many.correct)
    np.testing.assert_array_equal(one.flip_correct, many.flip_correct)
    np.testing.assert_allclose(one.flip_loss, many.flip_loss, rtol=1e-5)


def test_halves_are_the_estimates_on_each_half_of_the_batches():
    net, archs, batches = _net(), _archs(4), _batches(count=4)
    tally = evaluation.tally_archs(net, archs, batches)
    first = evaluation.tally_archs(net, archs, batches[:2])
    columns = evaluation.supernet_columns(tally, "loss", False, True)
    np.testing.assert_allclose(columns["holdout_loss_half1"], first.mean_loss())
    np.testing.assert_allclose(columns["holdout_acc_half1"], first.accuracy())
    np.testing.assert_allclose(columns["score"], -tally.mean_loss())
    assert not np.allclose(columns["holdout_loss_half1"], columns["holdout_loss_half2"])


class _Holder:
    def __init__(self, module):
        self.module = module

    def averaged_modules(self):
        return [self.module]


def test_ema_is_the_exponential_average_of_the_last_steps_and_swaps_back():
    layer = torch.nn.Linear(2, 1, bias=False)
    holder = _Holder(layer)
    average = WeightAverage(total_steps=20, horizon=0.1)  # span 2, decay 1/3, starts after step 14
    assert (average.span, average.start) == (2, 14)
    history = []
    for step in range(1, 21):
        with torch.no_grad():
            layer.weight.fill_(float(step))
        history.append(float(step))
        average.after_step(step, holder)
    expected = 15.0  # the weights after step 15 start the average; then w <- d*w + (1-d)*new
    for value in history[15:]:
        expected = average.decay * expected + (1 - average.decay) * value
    with average.swapped_in(holder):
        assert layer.weight[0, 0].item() == pytest.approx(expected)
    assert layer.weight[0, 0].item() == 20.0
    assert average.updates == 6


def test_ema_restarts_when_the_averaged_tensors_change():
    holder = _Holder(torch.nn.Linear(2, 1))
    average = WeightAverage(total_steps=10, horizon=0.3)
    average.after_step(5, holder)
    holder.module = torch.nn.Linear(3, 1)  # a split strategy replaced its modules
    average.after_step(6, holder)
    assert average.restarts == [6] and average.updates == 1
    state = average.state_dict()
    again = WeightAverage(total_steps=10, horizon=0.3)
    again.load_state_dict(state)
    with again.swapped_in(holder):
        pass


def _smoke(tmp_path, *overrides, strategy="ws", name=None):
    return BenchRequest(strategy=strategy, preset="smoke", seed=0, overrides=tuple(overrides), runs_dir=tmp_path,
                        name=name, progress=False)


def test_all_estimators_scores_every_estimator_on_one_supernet_and_final_accuracy_matches_a_plain_run(tmp_path, env_data):
    plain = bench(_smoke(tmp_path, name="plain"))
    grid = bench(_smoke(tmp_path, "eval.all_estimators=true", name="grid"))
    reports = grid["estimators"]["estimators"]
    assert sorted(reports) == sorted(f"{w}-{b}{f}" for w in ("final", "ema") for b in ("accuracy", "loss") for f in ("", "-flip"))
    # the grid's default estimator is the plain run's, bit for bit: averaging and flips consume no random numbers
    assert reports["final-accuracy"]["kendall_tau"] == plain["metrics"]["kendall_tau"] == grid["metrics"]["kendall_tau"]
    assert grid["estimator"] == plain["estimator"] == "final-accuracy"
    assert grid["weight_average"]["updates"] > 0
    ema = bench(_smoke(tmp_path, "eval.weights=ema", "eval.estimate_by=loss", "eval.flip=true", name="ema"))
    assert ema["estimator"] == "ema-loss-flip"
    assert ema["metrics"]["kendall_tau"] == reports["ema-loss-flip"]["kendall_tau"]
    grid_rows = pd.read_csv(tmp_path / "grid" / "predictions.csv")
    ema_rows = pd.read_csv(tmp_path / "ema" / "predictions.csv")
    np.testing.assert_array_equal(ema_rows["estimate"], grid_rows["score_ema-loss-flip"])
    assert not np.allclose(ema_rows["estimate"], grid_rows["score_final-loss-flip"])


def test_estimator_options_are_refused_without_a_supernet(tmp_path, env_data):
    with pytest.raises(HarnessError, match=r"eval.weights='ema' needs a supernet.*'params'"):
        bench(_smoke(tmp_path, "eval.weights=ema", strategy="params"))
    with pytest.raises(HarnessError, match=r"eval.weights 'swa'; accepted: ema, final"):
        bench(_smoke(tmp_path, "eval.weights=swa"))
    with pytest.raises(HarnessError, match=r"eval.ema_horizon=0.5"):
        bench(_smoke(tmp_path, "eval.ema_horizon=0.5"))
    assert not any(tmp_path.iterdir())


# ---- the selftest's planted faults change what they say they change ---------------------------------

def test_sampler_gap_never_samples_conv3_on_the_first_edge():
    rngs = [np.random.default_rng([2, i]) for i in range(300)]
    assert any(SPACE.sample(r).ops[0] == CONV3 for r in rngs)
    with gate_selftest.FAULTS["sampler_gap"].applied():
        assert not any(SPACE.sample(np.random.default_rng([2, i])).ops[0] == CONV3 for i in range(300))
    assert any(SPACE.sample(np.random.default_rng([2, i])).ops[0] == CONV3 for i in range(300))


def test_bn_running_changes_the_estimates_and_is_undone():
    net, archs, batches = _net(), _archs(5), _batches()
    clean = evaluation.tally_supernet(net, archs, batches)
    with gate_selftest.FAULTS["bn_running"].applied():
        faulty = evaluation.tally_supernet(net, archs, batches)
    again = evaluation.tally_supernet(net, archs, batches)
    assert not np.allclose(clean.loss, faulty.loss)
    np.testing.assert_array_equal(clean.loss, again.loss)


def test_no_projection_makes_dinas_step_like_ws_and_lr_tenth_scales_the_rate():
    from harness.strategies.dinas.strategy import DisturbanceImmune
    from harness.strategies.supernet import SinglePathStrategy

    assert DisturbanceImmune.apply_update is not SinglePathStrategy.apply_update
    with gate_selftest.FAULTS["no_projection"].applied():
        assert DisturbanceImmune.apply_update is SinglePathStrategy.apply_update
    assert DisturbanceImmune.apply_update is not SinglePathStrategy.apply_update
    overrides = gate_selftest.FAULTS["lr_tenth"].overrides("regress")
    assert overrides == ("train.lr=0.005",) or json.loads(overrides[0].split("=")[1]) == pytest.approx(0.005)
