"""A NAS-Bench-101 cell: DAG adjacency (upper triangular) + vertex labels, pruned, validated and hashed.

Text form (CLI, files, run directories): `BITS|OPS`, BITS the V x V adjacency row-major as `0`/`1`
(row i, column j = edge i -> j), OPS the V labels comma-separated; e.g. the bare input -> output cell
(V = 2) is `0100|input,output`. Any V <= 7 is accepted; the cell is pruned on parsing, so `str()` always
prints the pruned form. Rules are the benchmark's (Ying et al. 2019, `ModelSpec` and
`NASBench._check_spec`): strictly upper triangular, vertices on no input -> output path removed, the input
must reach the output, at most 9 edges after pruning, first label `input`, last `output`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from harness.errors import HarnessError, one_of

INPUT, OUTPUT = "input", "output"
CONV3X3, CONV1X1, MAXPOOL3X3 = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
# The order is the benchmark's `available_ops`: a label's index enters the official hash.
OPS = (CONV3X3, CONV1X1, MAXPOOL3X3)
MAX_VERTICES = 7
MAX_EDGES = 9


def _reachable(matrix: np.ndarray, start: int, forward: bool) -> set[int]:
    seen, frontier = {start}, [start]
    while frontier:
        v = frontier.pop()
        nxt = np.flatnonzero(matrix[v] if forward else matrix[:, v])
        for w in nxt.tolist():
            if w not in seen:
                seen.add(w)
                frontier.append(w)
    return seen


def prune(matrix: np.ndarray, ops: list[str]) -> tuple[np.ndarray, list[str]] | None:
    """Drops vertices that lie on no input -> output path (their results never reach the output, or they
    receive nothing from the input); None if the input does not reach the output at all."""
    n = len(ops)
    keep = sorted(_reachable(matrix, 0, True) & _reachable(matrix, n - 1, False))
    if 0 not in keep or n - 1 not in keep:
        return None
    return matrix[np.ix_(keep, keep)].copy(), [ops[i] for i in keep]


def graph_hash(matrix: np.ndarray, labels: list[int]) -> str:
    """The benchmark's isomorphism-invariant fingerprint (Weisfeiler-Lehman style colour refinement).

    Each vertex starts from md5 of (out-degree, in-degree, label); V rounds replace it by md5 of its sorted
    in-neighbour hashes, its sorted out-neighbour hashes and itself; the graph's hash is md5 of the sorted
    vertex hashes. The string formats are the official ones, so hashes equal the benchmark's keys.
    """
    n = len(labels)
    outs, ins = matrix.sum(axis=1), matrix.sum(axis=0)
    state = [hashlib.md5(str((int(outs[v]), int(ins[v]), int(labels[v]))).encode()).hexdigest() for v in range(n)]
    preds = [np.flatnonzero(matrix[:, v]).tolist() for v in range(n)]
    succs = [np.flatnonzero(matrix[v]).tolist() for v in range(n)]
    for _ in range(n):
        state = [
            hashlib.md5(
                ("".join(sorted(state[w] for w in preds[v])) + "|" + "".join(sorted(state[w] for w in succs[v])) + "|" + state[v]).encode()
            ).hexdigest()
            for v in range(n)
        ]
    return hashlib.md5(str(sorted(state)).encode()).hexdigest()


@dataclass(frozen=True)
class Cell:
    """A pruned, valid cell. Build it with `Cell.make` or `Cell.parse`, which enforce the rules."""

    bits: str  # V*V adjacency, row-major
    ops: tuple[str, ...]

    @staticmethod
    def make(matrix, ops, text: str | None = None) -> "Cell":
        what = repr(text) if text is not None else "cell"
        ops = [str(o).strip() for o in ops]
        matrix = np.asarray(matrix)
        n = len(ops)
        if matrix.shape != (n, n):
            raise HarnessError(f"NB101 {what}: adjacency is {matrix.shape}, expected {n}x{n} for {n} labels")
        if not 2 <= n <= MAX_VERTICES:
            raise HarnessError(f"NB101 {what}: {n} vertices; accepted 2..{MAX_VERTICES}")
        if not np.isin(matrix, (0, 1)).all():
            raise HarnessError(f"NB101 {what}: adjacency entries must be 0 or 1")
        matrix = matrix.astype(np.int64)
        if np.tril(matrix).any():
            i, j = map(int, np.argwhere(np.tril(matrix))[0])
            raise HarnessError(
                f"NB101 {what}: edge {i}->{j} is on or below the diagonal; the adjacency must be strictly upper triangular (a DAG in topological order, no cycles)"
            )
        if ops[0] != INPUT or ops[-1] != OUTPUT:
            raise HarnessError(f"NB101 {what}: labels must start with {INPUT!r} and end with {OUTPUT!r}; got {ops[0]!r} ... {ops[-1]!r}")
        for op in ops[1:-1]:
            if op not in OPS:
                raise one_of(f"NB101 {what} label", op, OPS)
        pruned = prune(matrix, ops)
        if pruned is None:
            raise HarnessError(f"NB101 {what}: the input is not connected to the output (no input -> output path)")
        matrix, ops = pruned
        if int(matrix.sum()) > MAX_EDGES:
            raise HarnessError(f"NB101 {what}: {int(matrix.sum())} edges after pruning; at most {MAX_EDGES} are allowed")
        return Cell("".join(str(int(b)) for b in matrix.reshape(-1)), tuple(ops))

    @staticmethod
    def parse(text: str) -> "Cell":
        bits, sep, labels = str(text).strip().partition("|")
        if not sep:
            raise HarnessError(
                f"NB101 cell {text!r} is not of the form BITS|OPS (adjacency rows as 0/1 digits, then comma-separated labels), e.g. '0100|input,output'"
            )
        bits = bits.strip()
        ops = [o.strip() for o in labels.split(",")]
        n = len(ops)
        if len(bits) != n * n or set(bits) - {"0", "1"}:
            raise HarnessError(f"NB101 cell {text!r}: {n} labels need {n * n} adjacency digits 0/1; got {bits!r} ({len(bits)} characters)")
        return Cell.make(np.array([int(b) for b in bits]).reshape(n, n), ops, text)

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    @cached_property
    def matrix(self) -> np.ndarray:
        n = self.num_vertices
        m = np.array([int(b) for b in self.bits], dtype=np.int64).reshape(n, n)
        m.setflags(write=False)
        return m

    @property
    def num_edges(self) -> int:
        return int(self.matrix.sum())

    @cached_property
    def hash(self) -> str:
        labels = [-1] + [OPS.index(op) for op in self.ops[1:-1]] + [-2]
        return graph_hash(self.matrix, labels)

    def __str__(self) -> str:
        return f"{self.bits}|{','.join(self.ops)}"


def sample(rng: np.random.Generator) -> Cell:
    """A uniformly random valid *specification*, by the benchmark's own rejection sampling.

    Draw each of the 21 upper-triangle bits of a 7x7 matrix with probability 1/2 and each interior label
    uniformly; keep the draw if the pruned cell is valid. This is uniform over valid 7-vertex
    specifications, not over the 423,624 isomorphism classes: a class is drawn in proportion to the number
    of specifications that prune and hash to it (small cells, which many specifications collapse to, are
    drawn more often) -- exactly as the benchmark's random-search baseline samples.
    """
    n = MAX_VERTICES
    upper = np.triu_indices(n, 1)
    while True:
        matrix = np.zeros((n, n), dtype=np.int64)
        matrix[upper] = rng.integers(0, 2, size=len(upper[0]))
        ops = [INPUT] + [OPS[int(i)] for i in rng.integers(0, len(OPS), size=n - 2)] + [OUTPUT]
        pruned = prune(matrix, ops)
        if pruned is not None and int(pruned[0].sum()) <= MAX_EDGES:
            return Cell.make(matrix, ops)
