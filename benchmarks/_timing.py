"""Side-by-side timing helpers: interleaved repetitions so machine noise hits every contender alike."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def interleaved(contenders: dict[str, Callable[[], None]], repeats: int = 7, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each contender, measured round-robin."""
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            started = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}
