"""`list`: the registered spaces, strategies, presets and features, and where each came from."""
from __future__ import annotations

from harness.config import preset_names
from harness.plugins import add_plugin_argument
from harness.registry import BUILT_IN, COMMANDS, FEATURES, SPACES, STRATEGIES


def _named(registry) -> str:
    """'a, b, c (entry point my-dist)': names, each plug-in's origin beside it."""
    return ", ".join(name if registry.origin(name) == BUILT_IN else f"{name} ({registry.origin(name)})"
                     for name in registry.names())


@COMMANDS.register("list")
class ListNames:
    help = "list spaces, strategies, presets and run features (plug-ins with where they came from)"

    @staticmethod
    def add_arguments(parser) -> None:
        add_plugin_argument(parser)

    @staticmethod
    def run(args) -> int:
        for title, names in (
            ("spaces", _named(SPACES)),
            ("strategies", _named(STRATEGIES)),
            ("presets", ", ".join(preset_names())),
            ("features", _named(FEATURES)),
        ):
            print(f"{title:<11} {names or '-'}")
        print("(all built-in unless marked: entry point <distribution> or --plugin <module>)")
        return 0
