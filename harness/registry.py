"""Name -> factory registries, so a new space, strategy or run feature is one module that registers itself.

Three places are searched, and each name remembers which one it came from (`harness list` shows it):
- built-in: every module of the registry's package (harness.strategies, harness.spaces, harness.features);
- entry points of installed distributions, in the groups `harness.strategies`, `harness.spaces` and
  `harness.features`: `NAME = pkg.module` imports a module that registers itself, `NAME = pkg.module:Obj`
  also registers Obj under NAME if importing did not;
- `--plugin pkg.module` (or `plugins = [...]` in a preset): see harness.plugins.
"""
from __future__ import annotations

import importlib
import pkgutil
from contextlib import contextmanager
from importlib import metadata
from typing import Callable, Generic, Iterator, TypeVar

from harness.errors import HarnessError, one_of

T = TypeVar("T")
BUILT_IN = "built-in"

# Where the registrations happening now come from (innermost last): set while a plug-in is imported.
_origins: list[str] = []


@contextmanager
def registering_from(origin: str) -> Iterator[None]:
    _origins.append(origin)
    try:
        yield
    finally:
        _origins.pop()


def _default_origin(item) -> str:
    module = getattr(item, "__module__", "") or ""
    return BUILT_IN if module == "harness" or module.startswith("harness.") else f"module {module}"


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str, entry_point_group: str | None = None):
        self.kind = kind
        self._package = package
        self._group = entry_point_group
        self._items: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            origin = _origins[-1] if _origins else _default_origin(item)
            if name in self._items and self._items[name] is not item:
                message = f"{self.kind} {name!r} registered twice ({self._origin[name]}, then {origin})"
                # A plug-in's clash is the user's input: one line naming it. A built-in clash is a bug.
                raise HarnessError(message) if origin != BUILT_IN else ValueError(message)
            self._items[name] = item
            self._origin.setdefault(name, origin)
            return item

        return add

    def _load_all(self) -> None:
        # Importing every module of the package runs its @register decorators: no central list to edit.
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(self._package)
        with registering_from(BUILT_IN):
            for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
                importlib.import_module(info.name)
        if self._group:
            for entry in metadata.entry_points(group=self._group):
                self._load_entry_point(entry)

    def _load_entry_point(self, entry) -> None:
        dist = getattr(entry.dist, "name", None) or "unknown distribution"
        origin = f"entry point {dist}"
        with registering_from(origin):
            try:
                obj = entry.load()
            except HarnessError as exc:
                raise HarnessError(f"plug-in {entry.value!r} (entry point {entry.name!r} of {dist}): {exc}") from None
            except Exception as exc:  # noqa: BLE001 - any failure of foreign code is reported as one line naming it
                raise HarnessError(f"plug-in {entry.value!r} (entry point {entry.name!r} in group {self._group} of {dist}) "
                                   f"failed to load: {type(exc).__name__}: {exc}".splitlines()[0]) from None
            if entry.attr and self._items.get(entry.name) is not obj:
                self.register(entry.name)(obj)

    def get(self, name: str) -> T:
        self._load_all()
        if name not in self._items:
            raise one_of(self.kind, name, self._items)
        return self._items[name]

    def names(self) -> list[str]:
        self._load_all()
        return sorted(self._items)

    def origin(self, name: str) -> str:
        """Where `name` came from: 'built-in', 'entry point <distribution>' or '--plugin <module>'."""
        self.get(name)
        return self._origin[name]

    def reload_entry_points(self) -> None:
        """Looks for entry points again (after a distribution was installed in this process)."""
        if not self._loaded:
            return
        if self._group:
            for entry in metadata.entry_points(group=self._group):
                if entry.name not in self._items:
                    self._load_entry_point(entry)


STRATEGIES: Registry = Registry("strategy", "harness.strategies", "harness.strategies")
SPACES: Registry = Registry("space", "harness.spaces", "harness.spaces")
# Optional run features (training hooks such as the disturbance probe), enabled under [features.NAME].
FEATURES: Registry = Registry("feature", "harness.features", "harness.features")
# CLI verbs (`python -m harness VERB`): each module of harness.commands registers one.
COMMANDS: Registry = Registry("command", "harness.commands")
PLUGGABLE = (STRATEGIES, SPACES, FEATURES)
