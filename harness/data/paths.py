"""Where data lives: $HARNESS_DATA, else ./data beside the repository (or the working directory)."""
from __future__ import annotations

import os
from pathlib import Path

from harness.errors import HarnessError

ENV_VAR = "HARNESS_DATA"


def data_root(override: str | Path | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path.cwd() / "data"


def require_dir(path: Path, what: str, how: str) -> Path:
    if not path.is_dir():
        raise HarnessError(f"{what} not found at {path} (set ${ENV_VAR} or --data-dir); {how}")
    return path
