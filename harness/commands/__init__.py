"""CLI verbs. A module registers a class with `help`, `add_arguments(parser)` and `run(args) -> int`."""
