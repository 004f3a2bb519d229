"""NB101 networks: supernet path = standalone network with copied weights; parameter counts; BN momentum."""
import numpy as np
import pandas as pd
import pytest
import torch

from harness.spaces.nb101.cell import Cell, sample
from harness.spaces.nb101.network import BN_MOMENTUM, NB101Supernet, NetworkShape, build_standalone, copy_into_supernet, vertex_channels
from harness.strategies.training_free import proxies




def _cells() -> list[Cell]:
    rng = np.random.default_rng(3)
    cells = [Cell.parse("0100|input,output")]
    while len(cells) < 12:
        cells.append(sample(rng))
    return cells


@pytest.mark.parametrize("bn_mode", ["batch", "running"])
def test_supernet_path_equals_standalone(bn_mode):
    # Odd widths (C=5 -> 5, 10, 20) make the output split uneven, so truncation and the +1 channels are exercised.
    shape = NetworkShape(channels=5, cells_per_stage=2, num_classes=7, bn_mode=bn_mode)
    x = torch.randn(6, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    for cell in _cells():
        torch.manual_seed(1)
        net = build_standalone(cell, shape)
        supernet = NB101Supernet(shape)
        copy_into_supernet(net, supernet, cell)
        net.train(), supernet.train()
        ref = net(x)
        out = supernet(x, cell)
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6, msg=f"train-mode mismatch for {cell}")
        if bn_mode == "running":
            net.eval(), supernet.eval()
            torch.testing.assert_close(supernet(x, cell), net(x), rtol=1e-5, atol=1e-6, msg=f"eval-mode mismatch for {cell}")


def test_supernet_path_trains_only_its_slices():
    shape = NetworkShape(channels=4, cells_per_stage=1)
    supernet = NB101Supernet(shape)
    cell = Cell.parse("010001000|input,conv1x1-bn-relu,output")
    loss = supernet(torch.randn(4, 3, 8, 8), cell).sum()
    loss.backward()
    first = supernet.cells[0]
    assert first.ops[0]["conv1x1"][0].weight.grad is not None
    assert first.ops[0]["conv3x3"][0].weight.grad is None  # not on the path
    assert first.ops[1]["conv1x1"][0].weight.grad is None


def test_bn_momentum_is_pytorch_equivalent_of_tf_decay():
    net = build_standalone(Cell.parse("0100|input,output"), NetworkShape(channels=8, cells_per_stage=1, bn_mode="running"))
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(abs(m.momentum - 0.003) < 1e-12 for m in bns) and BN_MOMENTUM == pytest.approx(0.003)


def test_vertex_channels_split_the_output():
    # input -> 1, 2, 3; 1 -> 4 (output); 2 -> 4; 3 -> 4: three feeders share 128 channels (43, 43, 42).
    cell = Cell.parse("0111000001000010000100000|input,conv3x3-bn-relu,conv1x1-bn-relu,maxpool3x3,output")
    widths = vertex_channels(128, 128, cell.matrix)
    feeders = [w for v, w in enumerate(widths[1:-1], 1) if cell.matrix[v, -1]]
    assert sum(feeders) == 128 and max(feeders) - min(feeders) <= 1


def test_parameter_count_matches_benchmark_figures(data_dir):
    """params_m of the sample (NASLib's copy of the benchmark's trainable_parameters) at stem 128, 3x3 cells."""
    raw = pd.read_csv(data_dir / "nb101" / "nb101_sample500.csv", dtype={"adjacency": str}).iloc[::50]
    for adjacency, ops, params_m in zip(raw["adjacency"], raw["ops"], raw["params_m"]):
        net = build_standalone(Cell.parse(f"{adjacency}|{ops}"), NetworkShape())
        assert int(proxies.param_count(net)) == round(params_m * 1e6), (adjacency, ops)


def test_supernet_is_sampled_with_valid_cells_and_runs_at_batch_one():
    shape = NetworkShape(channels=4, cells_per_stage=1)
    supernet = NB101Supernet(shape).eval()
    rng = np.random.default_rng(0)
    for _ in range(5):
        assert supernet(torch.randn(1, 3, 8, 8), sample(rng)).shape == (1, 10)
