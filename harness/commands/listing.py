"""`list`: the registered spaces, strategies, presets and features."""
from __future__ import annotations

from harness.config import preset_names
from harness.registry import FEATURES, SPACES, STRATEGIES, COMMANDS


@COMMANDS.register("list")
class ListNames:
    help = "list spaces, strategies, presets and run features"

    @staticmethod
    def add_arguments(parser) -> None:
        pass

    @staticmethod
    def run(args) -> int:
        for title, names in (
            ("spaces", SPACES.names()),
            ("strategies", STRATEGIES.names()),
            ("presets", preset_names()),
            ("features", FEATURES.names()),
        ):
            print(f"{title:<11} {', '.join(names) or '-'}")
        return 0
