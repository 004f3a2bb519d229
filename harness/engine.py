"""The training loop: batches, progress, checkpoints, divergence and interruption. Strategy-agnostic.

Hooks (e.g. the disturbance probe) may choose the architecture of a step (`forced_arch`) and observe the
strategy after a step (`after_step`); their state is checkpointed with the strategy's.
"""
from __future__ import annotations

import math
import signal
import threading
from typing import Any, Callable, Protocol, Sequence

from tqdm import tqdm

from harness.data.tensors import DeviceData
from harness.errors import DivergenceError, HarnessError
from harness.strategies.base import Strategy


class TrainHook(Protocol):
    def forced_arch(self, step: int) -> Any: ...

    def after_step(self, step: int, strategy: Strategy) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class _StopFlag:
    """Turns SIGINT/SIGTERM into a request to stop at the next step boundary, so the checkpoint is whole."""

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame) -> None:
        if self.requested is not None:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def train(
    strategy: Strategy,
    data: DeviceData,
    seed: int,
    start_step: int,
    save_checkpoint: Callable[[int], None],
    checkpoint_every: int,
    hooks: Sequence[TrainHook] = (),
    progress: bool = True,
    log: Callable[[str], None] = lambda _msg: None,
) -> int:
    """Run steps start_step .. strategy.training_steps()-1; returns the number of steps completed."""
    total = strategy.training_steps()
    last_saved = start_step
    running = math.nan
    with _StopFlag() as stop, tqdm(total=total, initial=start_step, desc="train", unit="step", disable=not progress) as bar:
        for step in range(start_step, total):
            images, labels = data.train_batch(seed, step)
            forced = None
            for hook in hooks:
                forced = hook.forced_arch(step) or forced
            loss = strategy.train_step(step, images, labels, forced)
            if not math.isfinite(loss):
                # Steps are counted as in checkpoints and status.json: step k is the k-th optimiser step.
                raise DivergenceError(
                    f"training diverged: loss={loss} at step {step + 1}/{total}; the last good checkpoint (step {last_saved}) is kept "
                    f"-- lower train.lr, or clip harder with a smaller positive train.grad_clip, and start a new run with --name"
                )
            running = loss if math.isnan(running) else 0.98 * running + 0.02 * loss
            for hook in hooks:
                hook.after_step(step + 1, strategy)
            done = step + 1
            if done % checkpoint_every == 0 or done == total or stop.requested:
                save_checkpoint(done)
                last_saved = done
            bar.update(1)
            if done % 25 == 0 or done == total:
                bar.set_postfix(loss=f"{running:.3f}")
            if done % max(1, total // 10) == 0:
                log(f"step {done}/{total} loss(ema)={running:.4f}")
            if stop.requested and done < total:
                raise HarnessError(
                    f"interrupted by {stop.requested} after step {done}/{total}; checkpoint saved -- continue with --resume"
                )
    strategy.on_train_end()
    return total
