"""End to end on nb101 (smoke preset): ws, dinas and the training-free strategies score against nb101_val."""
import pytest

from harness.runs.run import BenchRequest, bench


@pytest.mark.parametrize("strategy", ["ws", "dinas", "params", "flops", "synflow", "naswot", "snip", "gradnorm", "random"])
def test_smoke_runs_against_nb101_val(tmp_path, data_dir, strategy):
    metrics = bench(BenchRequest(strategy=strategy, space="nb101", preset="smoke", runs_dir=tmp_path, data_dir=str(data_dir), progress=False))
    assert metrics["space"] == "nb101" and metrics["ground_truth_column"] == "nb101_val"
    # Ground-truth rows are isomorphism classes already, so the de-isomorphic subset is the whole set.
    assert metrics["metrics"]["num_archs"] == metrics["metrics"]["num_archs_deisomorphic"] == 20
    run = next(tmp_path.iterdir())
    predictions = (run / "predictions.csv").read_text().splitlines()
    assert len(predictions) == 21 and predictions[1].endswith(",nb101_val")


def test_space_presets_take_precedence_over_top_level_ones():
    from harness.config import resolve

    mini = resolve("mini", space="nb101")
    assert mini.eval.ground_truth == "nb101_val" and mini.eval.num_archs == 0 and mini.eval.probe_archs == 0
    assert resolve("mini").eval.ground_truth == "cifar10_test"  # nb201 / no space: unchanged
    assert resolve("paper", space="nb101") == resolve("paper")  # no nb101 version: the top-level preset
