"""`fewshot` (Zhao et al. 2021): split an edge exhaustively, one sub-supernet per candidate op.

No criterion: the edge is the first unsplit one in `edge_order` (5 sub-supernets per level on NB201).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.errors import HarnessError
from harness.registry import STRATEGIES
from harness.strategies.split.base import SplitDecision, SplitOptions, SplitStrategy, require_fixed_edges


@dataclass(frozen=True)
class FewShotOptions(SplitOptions):
    edge_order: list = field(default_factory=lambda: [0, 1, 2, 3, 4, 5])

    def validate(self) -> None:
        super().validate()
        if not self.edge_order or not all(isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in self.edge_order):
            raise HarnessError(f"edge_order={self.edge_order!r} must be a non-empty list of edge indices (0-based)")
        if len(set(self.edge_order)) != len(self.edge_order):
            raise HarnessError(f"edge_order={self.edge_order!r} repeats an edge")


@STRATEGIES.register("fewshot")
class FewShot(SplitStrategy):
    name = "fewshot"
    Options = FewShotOptions

    def __init__(self, ctx, options):
        require_fixed_edges(ctx)
        edges = len(ctx.space.decisions())
        if any(e >= edges for e in options.edge_order):
            raise HarnessError(f"edge_order={options.edge_order!r} names an edge outside 0..{edges - 1}")
        super().__init__(ctx, options)
        if len(self.split_steps) > len(options.edge_order):
            raise HarnessError(f"{len(self.split_steps)} split levels but edge_order={options.edge_order!r} names fewer edges")

    def children_per_split(self, num_ops: int) -> int:
        return num_ops

    def split_decision(self, node, step):
        unsplit = set(self.unsplit_edges(node))
        for edge in self.options.edge_order:
            if edge in unsplit:
                return SplitDecision(edge, [(op,) for op in node.mask[edge]], {"rule": "edge_order"})
        raise HarnessError(f"edge_order={self.options.edge_order!r} has no unsplit edge left for split level {node.level + 1}")
