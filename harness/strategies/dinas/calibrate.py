"""Calibration of the function-space step-match control (`strategy.ws.function_match`) from dinas runs.

The control is `ws` with every learning rate multiplied by a factor s. From any state, its update is s times
ws's (the optimiser is linear in lr), so on any input X its layer outputs move by s ||dW_ws X||. dinas records
`protection_fresh`: the mean over measured steps and projected layers of ||dW X|| / ||dW_ws X|| on fresh rows
(an independent batch through the current path), dW its applied update and dW_ws ws's update from the same
state. Setting s = that mean makes the control move layer outputs on fresh inputs by what dinas moves them on
average. The value is the mean of `protection_fresh` over dinas runs at *tuning* seeds (>= TUNING_SEEDS_FROM),
never at the seeds a verdict is computed on.
"""
from __future__ import annotations

import statistics
from typing import Sequence

from harness.errors import HarnessError
from harness.scoring.archsets import TUNING_SEEDS_FROM


def check_tuning_seeds(seeds: Sequence[int]) -> None:
    low = [s for s in seeds if s < TUNING_SEEDS_FROM]
    if not seeds or low:
        raise HarnessError(f"calibration seeds {list(seeds)!r}: accepted are tuning seeds >= {TUNING_SEEDS_FROM} "
                           f"(seeds below are verdict seeds); got {low or 'none'}")


def function_match_value(summaries: dict[int, dict]) -> dict:
    """{seed: dinas strategy_summary} -> the calibrated factor (mean protection_fresh) with what it came from."""
    check_tuning_seeds(sorted(summaries))
    per_seed = {}
    for seed, summary in sorted(summaries.items()):
        value = summary.get("protection_fresh")
        if value is None or not value > 0:
            raise HarnessError(f"dinas run at seed {seed} recorded protection_fresh={value!r}; it needs strategy.dinas.measure_every > 0")
        per_seed[seed] = float(value)
    values = list(per_seed.values())
    return {
        "function_match": round(statistics.fmean(values), 3),
        "per_seed_protection_fresh": per_seed,
        "spread": (min(values), max(values)),
        "mean_kept_grad_norm": {s: summaries[s].get("mean_kept_grad_norm") for s in sorted(summaries)},
    }
