import itertools

import pytest
import torch

from harness.errors import HarnessError
from harness.spaces.nb201.arch import EXAMPLE, NUM_EDGES, Arch
from harness.spaces.nb201.network import NB201Network, NetworkShape, Standalone, count_flops, count_parameters, live_edges

STANDALONE = NetworkShape(channels=16, cells_per_stage=5, num_classes=10, bn_mode="running")


def hand_count(ops: tuple[int, ...], c: int = 16, n: int = 5, classes: int = 10) -> int:
    """Independent count: conv weights + BN (gamma, beta) of every layer, written out from the NB201 paper."""
    def relu_conv_bn(cin, cout, k):
        return cin * cout * k * k + 2 * cout

    stem = 3 * c * 9 + 2 * c
    res = lambda cin, cout: relu_conv_bn(cin, cout, 3) + relu_conv_bn(cout, cout, 3) + cin * cout  # noqa: E731
    cells = 0
    for width in (c, 2 * c, 4 * c):
        per_cell = sum({2: relu_conv_bn(width, width, 1), 3: relu_conv_bn(width, width, 3)}.get(op, 0) for op in ops)
        cells += n * per_cell
    head = 2 * 4 * c + 4 * c * classes + classes
    return stem + res(c, 2 * c) + res(2 * c, 4 * c) + cells + head


@pytest.mark.parametrize("ops", [(0,) * 6, (3,) * 6, Arch.parse(EXAMPLE).ops, (2, 1, 4, 3, 0, 2)])
def test_parameter_count_matches_hand_count(ops):
    assert count_parameters(Standalone(Arch(ops), STANDALONE)) == hand_count(ops)


def test_parameter_range_matches_literature():
    counts = {ops: hand_count(ops) for ops in itertools.product(range(5), repeat=NUM_EDGES)}
    low, high = min(counts.values()), max(counts.values())
    assert count_parameters(Standalone(Arch((0,) * 6), STANDALONE)) == low
    assert count_parameters(Standalone(Arch((3,) * 6), STANDALONE)) == high
    # NAS-Bench-201 reports 0.07 M to 1.53 M parameters and 7.8 to 220 MFLOPs for CIFAR-10.
    assert round(low / 1e6, 2) == 0.07 and round(high / 1e6, 2) == 1.53
    assert round(count_flops(Standalone(Arch((3,) * 6), STANDALONE)) / 1e6, 1) == 220.1
    assert round(count_flops(Standalone(Arch((0,) * 6), STANDALONE)) / 1e6, 1) == 7.8


def test_supernet_path_equals_standalone_with_the_same_weights():
    torch.manual_seed(0)
    shape = NetworkShape(channels=4, cells_per_stage=2, num_classes=10, bn_mode="batch")
    supernet = NB201Network(shape)
    x = torch.randn(8, 3, 16, 16)
    for ops in [(3, 3, 4, 1, 3, 1), (0, 0, 0, 1, 0, 0), (2, 4, 0, 3, 1, 2)]:
        arch = Arch(ops)
        alone = Standalone(arch, shape, cell_affine=False)
        missing, unexpected = alone.net.load_state_dict(supernet.state_dict(), strict=False)
        assert not missing  # every standalone weight exists, under the same name, in the supernet
        assert torch.allclose(alone(x), supernet(x, arch), atol=1e-6)


def test_running_bn_supernet_path_equals_standalone_in_eval_only_with_its_buffers():
    """bn_mode="running": BN normalises with the batch in train mode and with running statistics in eval
    mode. A supernet's running statistics are accumulated over every path that used the op, so the
    standalone net equals the supernet path in eval mode when it receives the weights AND the buffers;
    with the weights alone (its own fresh statistics) it does not. In train mode both use batch statistics
    and agree either way."""
    torch.manual_seed(0)
    shape = NetworkShape(channels=4, cells_per_stage=2, num_classes=10, bn_mode="running")
    supernet = NB201Network(shape)
    supernet.train()
    with torch.no_grad():
        for code in (7, 1234, 9876, 15000):  # move the running statistics away from their initial values
            supernet(torch.randn(8, 3, 16, 16), Arch.from_code(code))
    supernet.eval()
    x = torch.randn(8, 3, 16, 16)
    state = supernet.state_dict()
    weights_only = {name: p for name, p in supernet.named_parameters()}
    for ops in [(3, 3, 4, 1, 3, 1), (2, 4, 0, 3, 1, 2)]:
        arch = Arch(ops)
        alone = Standalone(arch, shape, cell_affine=True)
        missing, _ = alone.net.load_state_dict(state, strict=False)
        assert not missing  # weights and running buffers all exist, under the same names
        alone.eval()
        with torch.no_grad():
            assert torch.allclose(alone(x), supernet(x, arch), atol=1e-6)
        fresh = Standalone(arch, shape, cell_affine=True)
        missing, _ = fresh.net.load_state_dict(weights_only, strict=False)
        assert missing and all(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in missing)
        fresh.eval()
        with torch.no_grad():
            assert not torch.allclose(fresh(x), supernet(x, arch), atol=1e-3)
            fresh.train(), supernet.train()
            assert torch.allclose(fresh(x), supernet(x, arch), atol=1e-6)
            supernet.eval()


def _naive_cell_output(cell, x, ops):
    """Every edge computed, no dead-edge pruning: the definition of the cell."""
    nodes = [x]
    e = 0
    for j in range(1, 4):
        total = torch.zeros_like(x)
        for i in range(j):
            if ops[e] != 0:
                name = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"][ops[e]]
                total = total + cell.edges[e][name](nodes[i])
            e += 1
        nodes.append(total)
    return nodes[3]


def test_dead_edge_pruning_does_not_change_the_function():
    torch.manual_seed(1)
    net = NB201Network(NetworkShape(channels=4, cells_per_stage=1, bn_mode="batch"))
    cell = net.cell_modules()[0]
    x = torch.randn(4, 4, 8, 8)
    for code in range(0, 5**6, 331):
        ops = Arch.from_code(code).ops
        assert torch.allclose(cell(x, ops, live_edges(ops)), _naive_cell_output(cell, x, ops), atol=1e-6)


def test_supernet_backward_touches_only_the_path():
    net = NB201Network(NetworkShape(channels=4, cells_per_stage=1))
    arch = Arch.parse("|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    net(torch.randn(4, 3, 8, 8), arch).sum().backward()
    for name, p in net.named_parameters():
        used = ".edges." not in name or any(
            f"edges.{e}.{op}." in name for e, op in [(0, "nor_conv_1x1"), (4, "nor_conv_3x3")]
        )
        # edge 5 (3<-2) reads node 2, which is zero (both its inputs are none), so conv3x3 there is skipped too.
        assert (p.grad is not None) == used, name


def test_network_rejects_ops_it_does_not_hold():
    alone = Standalone(Arch((3,) * 6), STANDALONE)
    with pytest.raises(HarnessError, match="does not hold"):
        alone.net(torch.randn(1, 3, 32, 32), Arch((2,) * 6))


def test_bn_mode_is_validated():
    with pytest.raises(HarnessError, match="bn_mode"):
        NetworkShape(bn_mode="frozen")
