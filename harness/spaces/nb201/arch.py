"""NAS-Bench-201 cell architectures: the official string format, enumeration and integer codes.

A cell has 4 nodes; node j sums one op applied to every earlier node i, so there are 6 edges,
ordered as in the official string: (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from harness.errors import HarnessError

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NONE, SKIP, CONV1, CONV3, POOL = range(5)
NUM_NODES = 4
EDGES: tuple[tuple[int, int], ...] = tuple((j, i) for j in range(1, NUM_NODES) for i in range(j))
NUM_EDGES = len(EDGES)
NUM_ARCHS = len(OPS) ** NUM_EDGES
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@dataclass(frozen=True, order=True)
class Arch:
    """One cell: `ops[e]` is the index into OPS of the op on edge EDGES[e]."""

    ops: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != NUM_EDGES or any(not (0 <= op < len(OPS)) for op in self.ops):
            raise HarnessError(f"invalid NB201 op indices {self.ops!r}; expected {NUM_EDGES} ints in 0..{len(OPS) - 1}")

    @property
    def code(self) -> int:
        """Base-5 integer in 0..15624 (not the benchmark index, which the ground-truth table defines)."""
        value = 0
        for op in self.ops:
            value = value * len(OPS) + op
        return value

    @classmethod
    def from_code(cls, code: int) -> "Arch":
        if not 0 <= code < NUM_ARCHS:
            raise HarnessError(f"NB201 arch code {code} out of range; accepted 0..{NUM_ARCHS - 1}")
        ops = []
        for _ in range(NUM_EDGES):
            code, op = divmod(code, len(OPS))
            ops.append(op)
        return cls(tuple(reversed(ops)))

    def op_names(self) -> tuple[str, ...]:
        return tuple(OPS[op] for op in self.ops)

    def __str__(self) -> str:
        parts, e = [], 0
        for j in range(1, NUM_NODES):
            parts.append("|" + "|".join(f"{OPS[self.ops[e + i]]}~{i}" for i in range(j)) + "|")
            e += j
        return "+".join(parts)

    @classmethod
    def parse(cls, text: str) -> "Arch":
        """Parse the official string; anything else is a one-line HarnessError naming the problem."""

        def bad(why: str) -> HarnessError:
            return HarnessError(f"malformed NB201 architecture {text!r}: {why}; expected the form {EXAMPLE}")

        if not isinstance(text, str):
            raise bad("not a string")
        nodes = text.strip().split("+")
        if len(nodes) != NUM_NODES - 1:
            raise bad(f"{len(nodes)} node groups separated by '+', need {NUM_NODES - 1}")
        ops: list[int] = []
        for j, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
                raise bad(f"node {j} group {node!r} must start and end with '|'")
            edges = node[1:-1].split("|")
            if len(edges) != j:
                raise bad(f"node {j} has {len(edges)} inputs, need {j}")
            for i, edge in enumerate(edges):
                name, sep, source = edge.partition("~")
                if not sep or source != str(i):
                    raise bad(f"edge {edge!r} of node {j} must be 'op~{i}'")
                if name not in OPS:
                    raise HarnessError(
                        f"unknown NB201 op {name!r} in {text!r}; accepted: {', '.join(OPS)}"
                    )
                ops.append(OPS.index(name))
        return cls(tuple(ops))


def all_archs() -> list[Arch]:
    """Every cell of the space, in base-5 code order."""
    return [Arch(ops) for ops in itertools.product(range(len(OPS)), repeat=NUM_EDGES)]
