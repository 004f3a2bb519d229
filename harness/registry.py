"""Name -> factory registries, so a new space or strategy is one module that registers itself."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Generic, TypeVar

from harness.errors import one_of

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str):
        self.kind = kind
        self._package = package
        self._items: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items and self._items[name] is not item:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = item
            return item

        return add

    def _load_all(self) -> None:
        # Importing every module of the package runs its @register decorators: no central list to edit.
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(self._package)
        for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
            importlib.import_module(info.name)

    def get(self, name: str) -> T:
        self._load_all()
        if name not in self._items:
            raise one_of(self.kind, name, self._items)
        return self._items[name]

    def names(self) -> list[str]:
        self._load_all()
        return sorted(self._items)


STRATEGIES: Registry = Registry("strategy", "harness.strategies")
SPACES: Registry = Registry("space", "harness.spaces")
# Optional run features (training hooks such as the disturbance probe), enabled under [features.NAME].
FEATURES: Registry = Registry("feature", "harness.features")
# CLI verbs (`python -m harness VERB`): each module of harness.commands registers one.
COMMANDS: Registry = Registry("command", "harness.commands")
