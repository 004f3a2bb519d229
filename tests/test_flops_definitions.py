"""`flops` follows NAS-Bench-201's FLOPs (every edge's op counted); `live_flops` counts what reaches the output."""
import pytest

from harness.spaces.nb201.arch import Arch, OPS
from harness.spaces.nb201.network import NetworkShape, Standalone, benchmark_flops, count_flops

PAPER = NetworkShape(16, 5, 10, "batch")
C3, C1, NONE, SKIP = OPS.index("nor_conv_3x3"), OPS.index("nor_conv_1x1"), OPS.index("none"), OPS.index("skip_connect")


def test_the_benchmark_extremes_are_reproduced():
    # NB201 tabulates 220.11969 M for all-3x3 and 7.78305 M for cells without convs.
    assert benchmark_flops(Standalone(Arch((C3,) * 6), PAPER)) == 220_119_690
    assert benchmark_flops(Standalone(Arch((NONE,) * 6), PAPER)) == 7_783_050


def test_dead_edges_count_in_flops_but_not_in_live_flops():
    # Edge 0 (node 0 -> 1) is a 3x3 conv, but nothing leaves node 1 except `none`: its result is never read.
    # Edges: 0: 0->1, 1: 0->2, 2: 1->2, 3: 0->3, 4: 1->3, 5: 2->3.
    dead = Standalone(Arch((C3, NONE, NONE, SKIP, NONE, NONE)), PAPER)
    plain = Standalone(Arch((NONE, NONE, NONE, SKIP, NONE, NONE)), PAPER)
    per_cell_conv = lambda c, hw: c * c * 9 * hw * hw  # noqa: E731
    convs = 5 * (per_cell_conv(16, 32) + per_cell_conv(32, 16) + per_cell_conv(64, 8))
    assert benchmark_flops(dead) - benchmark_flops(plain) == convs
    assert count_flops(dead) == count_flops(plain)


def test_a_conv_fed_only_by_a_zero_node_still_counts():
    # Node 1 gets only `none`, yet NB201's network runs edge 2 (1 -> 2, a 1x1 conv) on its zeros.
    arch = Arch((NONE, NONE, C1, SKIP, NONE, SKIP))
    base = Arch((NONE, NONE, NONE, SKIP, NONE, SKIP))
    one_by_one = 5 * (16 * 16 * 32 * 32 + 32 * 32 * 16 * 16 + 64 * 64 * 8 * 8)
    assert benchmark_flops(Standalone(arch, PAPER)) - benchmark_flops(Standalone(base, PAPER)) == one_by_one
    assert count_flops(Standalone(arch, PAPER)) == count_flops(Standalone(base, PAPER))


@pytest.mark.parametrize("strategy", ["flops", "live_flops"])
def test_both_are_strategies(tmp_path, env_data, strategy):
    from harness.runs.run import BenchRequest, bench

    metrics = bench(BenchRequest(strategy=strategy, preset="smoke", runs_dir=tmp_path, progress=False))
    assert metrics["strategy_summary"]["proxy"] == strategy and metrics["metrics"]["num_archs"] == 20
