"""SIGTERM as an exception, so that a run or a sweep stops through the same path as Ctrl-C."""
from __future__ import annotations

import signal
import threading


class TermRaises:
    """Inside the block, SIGTERM raises `error(signal name)` in the main thread; the previous handler comes back
    after. (Only the main thread may set handlers: elsewhere the block changes nothing.)"""

    def __init__(self, error: type[BaseException]):
        self.error = error
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        return self

    def _raise(self, signum, _frame):
        raise self.error(signal.Signals(signum).name)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
            self.previous = None
