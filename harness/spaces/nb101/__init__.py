"""NAS-Bench-101 search space (`nb101`): cells as pruned DAGs, the official graph hash, nasbench_pytorch networks."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from harness.errors import HarnessError
from harness.registry import SPACES
from harness.spaces.base import SearchSpace
from harness.spaces.nb101.cell import OPS, Cell, sample
from harness.spaces.nb101.network import NB101Supernet, NetworkShape, build_standalone


@SPACES.register("nb101")
class NB101Space(SearchSpace):
    name = "nb101"
    op_names = OPS
    official_shape = {"channels": 128, "cells_per_stage": 3, "num_classes": 10}

    def parse(self, text: str) -> Cell:
        return Cell.parse(text)

    def all_archs(self) -> list[Cell]:
        raise HarnessError("NB101 has 423,624 cells and is not enumerated here; score the ground-truth table's cells (eval.num_archs=0)")

    def decisions(self) -> list[tuple[int, ...]]:
        # The topology is itself a choice, so there is no fixed set of edges with candidate ops to split on.
        return []

    def sample(self, rng: np.random.Generator, allowed: Sequence[Sequence[int]] | None = None) -> Cell:
        if allowed is not None:
            raise HarnessError("space 'nb101' cannot restrict sampling to per-edge op choices (it has no fixed edges)")
        return sample(rng)

    def shape(self, **kwargs) -> NetworkShape:
        return NetworkShape(**kwargs)

    def build_supernet(self, shape: NetworkShape, candidates=None) -> NB101Supernet:
        if candidates is not None:
            raise HarnessError("space 'nb101' has one supernet for every cell; per-edge candidate sets do not apply")
        return NB101Supernet(shape)

    def build_standalone(self, arch: Cell, shape: NetworkShape):
        return build_standalone(arch, shape)

    def canonical_form(self, arch: Cell) -> str:
        return arch.hash

    function_rule = "nb101 graph hash"

    def ground_truth_dataset(self, column: str) -> str:
        return "cifar10"  # NB101's accuracies are all CIFAR-10 (validation and test)

    def load_ground_truth(self, root=None, column: str | None = None):
        from harness.spaces.nb101.groundtruth import load_ground_truth

        gt = load_ground_truth(root)
        self.check_column(gt.columns, column, gt.path)
        return gt

    def describe(self, arch: Cell, gt) -> dict:
        info = {"pruned cell": str(arch), "vertices": arch.num_vertices, "edges": arch.num_edges, "graph hash (canonical form)": arch.hash}
        if gt is not None:
            index = gt.index_of(arch)
            info["ground truth"] = f"{gt.path.name} row {index}" if index >= 0 else f"not in {gt.path.name}"
            if index >= 0:
                row = gt.table.iloc[index]
                for column in gt.columns:
                    info[column] = f"{row[column]:.4f} (mean of {int(row['runs'])} runs)"
        return info
