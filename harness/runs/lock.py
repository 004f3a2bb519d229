"""An exclusive lock on a run directory, held for the whole run: two processes never write one run."""
from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

from harness.errors import HarnessError

LOCK_FILE = "run.lock"


class RunLock:
    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.handle = None

    def __enter__(self) -> "RunLock":
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown process"
            handle.close()
            raise HarnessError(
                f"run directory {self.path.parent} is in use by {holder}; wait for it to end, or use --name for another run"
            ) from None
        # The holder is written only once the lock is ours, so a reader never sees a loser's details.
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on host {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
            handle.flush()
        except OSError:
            handle.close()  # a full disk: the caller reports it; the lock must not stay held
            raise
        self.handle = handle
        return self

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
