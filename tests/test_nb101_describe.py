"""`describe` for both spaces: canonical form, index/hash, parameters and FLOPs at the benchmark's shape."""
import pytest

from harness.cli import main

# The example cell of the NAS-Bench-101 README (an Inception-like cell); the benchmark's API reports
# trainable_parameters = 8,555,530 for it at the official shape (stem 128, 3 stacks x 3 cells, 10 classes).
README_CELL = "0100110001000000010010000010000001000000010000000|input,conv3x3-bn-relu,maxpool3x3,conv3x3-bn-relu,conv3x3-bn-relu,conv1x1-bn-relu,output"


def test_describe_nb101_official_parameter_count(capsys):
    assert main(["describe", "--space", "nb101", README_CELL]) == 0
    out = capsys.readouterr().out
    assert "8,555,530" in out and "00005c142e6f48ac74fdcf73e3439874" in out and "channels=128" in out


def test_describe_nb101_in_sample_and_shape_override(capsys, data_dir):
    assert main(["describe", "--space", "nb101", "0100|input,output", "--set", "shape.channels=16", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "mean of 55 runs" in out and "channels=16" in out and "parameters" in out


def test_describe_nb201(capsys, data_dir):
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    assert main(["describe", arch, "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "1,531,546" in out and "benchmark index" in out


@pytest.mark.parametrize("argv, fragment", [
    (["describe", "--space", "nb101", "0110|input,output"], "strictly upper triangular"),
    (["describe", "--space", "nb101", "0100|input,output", "--set", "train.lr=1"], "describe --set key"),
])
def test_describe_errors(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_bench_refusals_on_nb101_are_one_line(capsys, tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA", str(data_dir))
    base = ["bench", "--space", "nb101", "--preset", "smoke", "--runs-dir", str(tmp_path), "--no-progress"]
    for strategy, fragment in (("fewshot", "fixed cell edges"), ("gm", "fixed cell edges"), ("darts", "no mixed-op supernet")):
        assert main([*base, "--strategy", strategy]) == 2
        err = capsys.readouterr().err
        assert fragment in err and err.count("\n") == 1
    assert main([*base, "--strategy", "ws", "--set", "eval.ground_truth=cifar10_test"]) == 2
    assert "unknown eval.ground_truth 'cifar10_test'; accepted: nb101_val" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before anything was written
