"""NAS-Bench-201 topology search space (`nb201`)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from harness.registry import SPACES
from harness.spaces.base import SearchSpace
from harness.spaces.nb201.arch import NUM_EDGES, OPS, Arch, all_archs
from harness.spaces.nb201.isomorphism import canonical_form
from harness.spaces.nb201.network import NB201Network, NetworkShape, Standalone


@SPACES.register("nb201")
class NB201Space(SearchSpace):
    name = "nb201"
    op_names = OPS

    def parse(self, text: str) -> Arch:
        return Arch.parse(text)

    def all_archs(self) -> list[Arch]:
        return all_archs()

    def decisions(self) -> list[tuple[int, ...]]:
        return [tuple(range(len(OPS)))] * NUM_EDGES

    def sample(self, rng: np.random.Generator, allowed: Sequence[Sequence[int]] | None = None) -> Arch:
        allowed = allowed or self.decisions()
        return Arch(tuple(int(choices[rng.integers(len(choices))]) for choices in allowed))

    def shape(self, **kwargs) -> NetworkShape:
        return NetworkShape(**kwargs)

    def build_supernet(self, shape: NetworkShape, candidates=None) -> NB201Network:
        return NB201Network(shape, candidates=candidates)

    def build_standalone(self, arch: Arch, shape: NetworkShape) -> Standalone:
        return Standalone(arch, shape)

    def benchmark_flops(self, network: Standalone, resolution: int) -> float:
        from harness.spaces.nb201.network import benchmark_flops

        return float(benchmark_flops(network, input_size=resolution))

    def canonical_form(self, arch: Arch) -> str:
        return canonical_form(arch, "nb201")

    # `strict` merges every cell the `nb201` string rule merges and more (x + 0 = x), so a split on it never
    # puts two cells computing the same function into different halves.
    function_rule = "nb201 strict isomorphism"

    def function_class(self, arch: Arch) -> str:
        return canonical_form(arch, "strict")

    official_shape = {"channels": 16, "cells_per_stage": 5, "num_classes": 10}
    ground_truth_columns = ("cifar10_test", "cifar100_test", "imagenet16_120_test")  # harness.scoring.groundtruth.COLUMNS

    def load_ground_truth(self, root=None, column: str | None = None):
        from harness.scoring.groundtruth import COLUMNS, load_ground_truth

        gt = load_ground_truth(root=root)
        self.check_column(COLUMNS, column, gt.path)
        return gt

    def describe(self, arch: Arch, gt) -> dict:
        info = {"arch": str(arch), "canonical form (nb201 rule)": canonical_form(arch, "nb201"), "strict canonical form": canonical_form(arch, "strict")}
        if gt is not None:
            index = gt.index_of(arch)
            info["benchmark index"] = index
            for column in gt.table.columns:
                if column not in ("index", "arch"):
                    info[column] = f"{gt.table[column].iloc[index]:.4f}"
        return info
