"""Ad-hoc plug-ins: `--plugin pkg.module` imports a module of the user's own code that registers strategies,
spaces or run features (with the same decorators as the built-in ones), without forking the harness.

Installed packages can instead declare entry points (see harness.registry). The modules loaded here are
remembered for the whole process: runs record them (config.json, part of their identity) and sweeps import
them again in every Ray worker before running a cell.
"""
from __future__ import annotations

import importlib
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Iterable

from harness.errors import HarnessError
from harness.registry import PLUGGABLE, registering_from

_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_loaded: list[str] = []


def check_names(modules: Iterable[str], where: str = "--plugin") -> tuple[str, ...]:
    names = []
    for module in modules:
        if not isinstance(module, str) or not _MODULE.fullmatch(module):
            raise HarnessError(f"{where} {module!r} is not a module name; accepted: a dotted Python module path, e.g. my_pkg.my_strategy")
        if module not in names:
            names.append(module)
    return tuple(names)


def load_plugins(modules: Iterable[str], where: str = "--plugin") -> tuple[str, ...]:
    """Imports each module (once per process) so that its registrations run; returns the names, deduplicated.
    Raises a one-line HarnessError naming the plug-in that failed."""
    names = check_names(modules, where)
    if not names:
        return names
    for registry in PLUGGABLE:  # built-ins and entry points first, so that a clash is blamed on the plug-in
        registry.names()
    for module in names:
        if module in _loaded:
            continue
        with registering_from(f"--plugin {module}"):
            try:
                importlib.import_module(module)
            except HarnessError as exc:
                raise HarnessError(f"plug-in {module!r}: {exc}") from None
            except ModuleNotFoundError as exc:
                missing = exc.name or "?"
                where_from = "" if missing == module else f" (it imports {missing!r}, which is not installed)"
                raise HarnessError(f"plug-in {module!r} cannot be imported{where_from}; accepted: a module on sys.path / PYTHONPATH") from None
            except Exception as exc:  # noqa: BLE001 - foreign code: one line naming it, no traceback
                raise HarnessError(f"plug-in {module!r} failed to import: {type(exc).__name__}: {exc}".splitlines()[0]) from None
        _loaded.append(module)
    return names


def loaded() -> tuple[str, ...]:
    """The --plugin modules imported so far in this process, in order."""
    return tuple(_loaded)


def _import_root(module: str) -> str | None:
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None)
    if not path:
        return None
    root = Path(path).resolve().parent
    depth = module.count(".") + (1 if Path(path).name == "__init__.py" else 0)
    for _ in range(depth):
        root = root.parent
    return str(root)


def search_paths() -> list[str]:
    """Folders a fresh interpreter needs on PYTHONPATH to import the loaded plug-ins and to find the
    distributions that declare harness entry points (for local Ray workers)."""
    paths = [p for p in (_import_root(m) for m in _loaded) if p]
    for registry in PLUGGABLE:
        if registry._group:
            for entry in metadata.entry_points(group=registry._group):
                located = getattr(entry.dist, "locate_file", None)
                if located is not None:
                    paths.append(str(Path(located("")).resolve()))
    return list(dict.fromkeys(paths))


def add_plugin_argument(parser) -> None:
    parser.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="MODULE",
                        help="import MODULE first: your own strategies, spaces or features, registered as the built-in "
                             "ones are (repeatable; runs record it; sweep workers import it too)")
