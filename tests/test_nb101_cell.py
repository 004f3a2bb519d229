"""NB101 cells: parsing and its errors, pruning, the official graph hash, sampling."""
import itertools

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.spaces.nb101.cell import CONV1X1, CONV3X3, MAXPOOL3X3, OPS, Cell, graph_hash, sample

C3, C1, MP = CONV3X3, CONV1X1, MAXPOOL3X3


def make(edges, ops):
    n = len(ops)
    m = np.zeros((n, n), dtype=int)
    for i, j in edges:
        m[i, j] = 1
    return Cell.make(m, ops)


def test_text_round_trip_and_pruned_print():
    cell = Cell.parse("0100|input,output")
    assert str(cell) == "0100|input,output" and Cell.parse(str(cell)) == cell
    # Vertex 2 receives nothing from the input and vertex 3 reaches nothing: both pruned.
    full = make([(0, 1), (1, 4), (2, 4), (1, 3)], ["input", C3, MP, C1, "output"])
    assert full.ops == ("input", C3, "output") and full.num_edges == 2
    assert str(full) == "010001000|input,conv3x3-bn-relu,output"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("0100 input,output", "not of the form BITS|OPS"),
        ("010|input,output", "need 4 adjacency digits"),
        ("0120|input,output", "need 4 adjacency digits"),
        ("0110|input,output", "on or below the diagonal"),  # 1 -> 0 with 0 -> 1: a cycle
        ("1100|input,output", "on or below the diagonal"),  # a self-loop
        ("0000|input,output", "not connected to the output"),
        ("010000000|input,conv5x5,output", "conv5x5"),
        ("0100|output,input", "must start with 'input'"),
    ],
)
def test_parse_errors_are_one_line(text, fragment):
    with pytest.raises(HarnessError) as err:
        Cell.parse(text)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_over_nine_edges_refused_after_pruning():
    dense = np.triu(np.ones((7, 7), dtype=int), 1)  # 21 edges
    with pytest.raises(HarnessError, match="21 edges after pruning; at most 9"):
        Cell.make(dense, ["input", C3, C3, C3, C3, C3, "output"])
    # 10 edges before pruning, 9 after: valid, as in the benchmark (edges are counted on the pruned graph).
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (0, 6), (0, 2), (1, 6)]
    m = np.zeros((7, 7), dtype=int)
    for i, j in edges:
        m[i, j] = 1
    m[0, 3] = 0
    ok = Cell.make(m, ["input", C3, C3, C3, C3, C3, "output"])
    assert ok.num_edges == 9


def test_isomorphic_cells_share_a_hash():
    # Two parallel branches listed in either order: a vertex relabelling of the same graph.
    a = make([(0, 1), (0, 2), (1, 3), (2, 3)], ["input", C3, C1, "output"])
    b = make([(0, 1), (0, 2), (1, 3), (2, 3)], ["input", C1, C3, "output"])
    assert a != b and a.hash == b.hash
    # Every relabelling of the interior vertices of a 5-vertex cell that keeps it topologically ordered.
    edges, ops = [(0, 1), (0, 2), (0, 3), (1, 4), (2, 4), (3, 4)], ["input", C3, C1, MP, "output"]
    hashes = set()
    for perm in itertools.permutations([1, 2, 3]):
        mapping = {0: 0, 4: 4, **{old: new for old, new in zip([1, 2, 3], perm)}}
        new_ops = list(ops)
        for old, new in mapping.items():
            new_ops[new] = ops[old]
        hashes.add(make([(mapping[i], mapping[j]) for i, j in edges], new_ops).hash)
    assert len(hashes) == 1
    # Dead vertices do not change the class.
    assert make([(0, 1), (1, 3), (2, 3)], ["input", C3, MP, "output"]).hash == make([(0, 1), (1, 2)], ["input", C3, "output"]).hash


def test_non_isomorphic_cells_have_different_hashes():
    chain = make([(0, 1), (1, 2), (2, 3)], ["input", C3, C1, "output"])
    swapped = make([(0, 1), (1, 2), (2, 3)], ["input", C1, C3, "output"])  # order along a chain matters
    parallel = make([(0, 1), (0, 2), (1, 3), (2, 3)], ["input", C3, C1, "output"])
    skip = make([(0, 1), (1, 2), (2, 3), (0, 3)], ["input", C3, C1, "output"])
    other_op = make([(0, 1), (1, 2), (2, 3)], ["input", C3, MP, "output"])
    hashes = [c.hash for c in (chain, swapped, parallel, skip, other_op)]
    assert len(set(hashes)) == len(hashes)


def test_hash_matches_the_benchmark_implementation():
    graph_util = pytest.importorskip("nasbench_pytorch.model.graph_util")
    rng = np.random.default_rng(5)
    for _ in range(200):
        cell = sample(rng)
        labels = [-1] + [OPS.index(op) for op in cell.ops[1:-1]] + [-2]
        assert cell.hash == graph_util.hash_module(np.array(cell.matrix), labels)
    assert graph_hash(np.array([[0, 1], [0, 0]]), [-1, -2]) == Cell.parse("0100|input,output").hash


def test_sampling_is_the_benchmarks_rejection_scheme():
    rng = np.random.default_rng(0)
    cells = [sample(rng) for _ in range(2000)]
    assert all(c.num_edges <= 9 and c.num_vertices <= 7 for c in cells)
    # Deterministic per generator state, and not confined to small cells.
    assert str(sample(np.random.default_rng(0))) == str(cells[0])
    assert max(c.num_vertices for c in cells) == 7 and min(c.num_vertices for c in cells) <= 3
    # Labels of surviving interior vertices are uniform over the three ops (about 1/3 each).
    labels = [op for c in cells for op in c.ops[1:-1]]
    shares = [labels.count(op) / len(labels) for op in OPS]
    assert all(abs(s - 1 / 3) < 0.03 for s in shares)
