"""What a strategy, the run driver and the metrics may ask of a search space."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

import numpy as np
from torch import nn


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
