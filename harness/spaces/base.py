"""What a strategy, the run driver and the metrics may ask of a search space."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

import numpy as np
from torch import nn

from harness.errors import HarnessError, one_of


class SearchSpace(ABC):
    name: str

    @abstractmethod
    def parse(self, text: str) -> Any:
        """Architecture string -> architecture object; one-line HarnessError if malformed."""

    @abstractmethod
    def all_archs(self) -> Sequence[Any]: ...

    @abstractmethod
    def sample(self, rng: np.random.Generator, allowed: Sequence[Sequence[int]] | None = None) -> Any:
        """A uniformly random architecture, optionally restricted to allowed op choices per decision."""

    @abstractmethod
    def decisions(self) -> list[tuple[int, ...]]:
        """Candidate choices of each decision (edge): the unit that split supernets partition."""

    @abstractmethod
    def build_supernet(self, shape: Any, candidates: list[tuple[int, ...]] | None = None) -> nn.Module: ...

    @abstractmethod
    def build_standalone(self, arch: Any, shape: Any) -> nn.Module: ...

    @abstractmethod
    def canonical_form(self, arch: Any) -> str:
        """Equal for architectures that compute the same function."""

    # The rule `function_class` applies (recorded with the scored/probe split).
    function_rule: str = "canonical form"

    def function_class(self, arch: Any) -> str:
        """Equal exactly when the space's finest rule proves two architectures compute the same function; the
        scored/probe split keeps each class whole. Defaults to the canonical form."""
        return self.canonical_form(arch)

    # Network shape at the benchmark's own scale (what `describe` reports by default); keys of shape().
    official_shape: dict = {}
    # The ground-truth columns a run may be scored against, where known without reading the table (empty:
    # checked when the table is loaded).
    ground_truth_columns: tuple = ()

    def load_ground_truth(self, root=None, column: str | None = None) -> Any:
        """The space's ground-truth table (index_of, arch_of, values, best, path); with `column`, a one-line
        HarnessError unless the table has that column."""
        raise NotImplementedError(f"space {self.name!r} has no ground truth")

    def ground_truth_dataset(self, column: str) -> str:
        """The image data set a ground-truth column was measured on (`cifar10_test` -> `cifar10`)."""
        return column.rsplit("_", 1)[0]

    @staticmethod
    def check_column(columns: Sequence[str], column: str | None, path: Any) -> None:
        if column is not None and column not in columns:
            raise HarnessError(f"{one_of('eval.ground_truth', column, columns)} (the columns of {path})")

    def benchmark_flops(self, network: nn.Module, resolution: int) -> float:
        """FLOPs of a standalone network as the space's benchmark tabulates them. Default (a benchmark that
        publishes none, e.g. NB101): multiply-accumulates of the convs and linears its forward runs."""
        from harness.spaces.nb201.network import count_flops

        return float(count_flops(network, input_size=resolution))

    def describe(self, arch: Any, gt: Any) -> dict:
        """Readable facts about one architecture beyond size (canonical form, benchmark index...)."""
        return {"canonical form": self.canonical_form(arch)}
