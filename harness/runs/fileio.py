"""Atomic writes and checksums: a killed run leaves either the old file or the new one, never half of one."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite_or_none(value: Any) -> Any:
    # JSON has no NaN: an undefined metric is written as null.
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    text = json.dumps(_finite_or_none(json.loads(json.dumps(data, default=_json_default))), indent=2, sort_keys=True)
    atomic_write(path, lambda tmp: tmp.write_text(text + "\n"))


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bytes(path: Path, data) -> None:
    """Writes `data` with plain os.write calls, so a full disk surfaces as OSError(ENOSPC) naming the file
    (torch's own file writer reports it as a RuntimeError about stream positions instead)."""
    view = memoryview(data)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while view:
            try:
                written = os.write(fd, view)
            except OSError as exc:
                if exc.filename is None:
                    exc.filename = str(path)
                raise
            view = view[written:]
    finally:
        os.close(fd)


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def mount_point(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    while not os.path.ismount(path):
        path = path.parent
    return path


def write_failure(exc: OSError, path: Path) -> str:
    """What a failed write means to the user, in a few words naming the disk (or directory) and the file."""
    target = Path(exc.filename) if exc.filename else Path(path)
    if exc.errno in DISK_FULL:
        try:
            free = shutil.disk_usage(mount_point(path)).free
        except OSError:
            free = None
        left = "" if free is None else f", {free // 1024} KiB free"
        return f"the disk holding {mount_point(path)} is full ({os.strerror(exc.errno)} writing {target.name}{left})"
    if exc.errno in NOT_WRITABLE:
        return f"{target} is not writable ({os.strerror(exc.errno)})"
    return f"{target}: {exc.strerror or exc} ({type(exc).__name__})"
