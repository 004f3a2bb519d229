"""The training loop: batches, progress, checkpoints, divergence and interruption. Strategy-agnostic.

Hooks (e.g. the disturbance probe) may choose the architecture of a step (`forced_arch`) and observe the
strategy after a step (`after_step`); their state is checkpointed with the strategy's.
"""
from __future__ import annotations

import math
import os
import signal
import threading
from typing import Any, Callable, Protocol, Sequence

import torch
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


def configure(compute, device: torch.device, data: DeviceData | None = None) -> dict:
    """Applies [compute] before any model is built; returns what was set, for the run record.

    deterministic (CUDA): deterministic algorithms, cuDNN without autotuning, a fixed cuBLAS workspace
    (CUBLAS_WORKSPACE_CONFIG must be set before the first cuBLAS call, hence here). Off on CUDA, cuDNN
    autotunes its kernels. channels_last: the images are stored NHWC, and convs follow their input's layout.
    """
    applied = {"precision": compute.precision, "channels_last": compute.channels_last, "deterministic": compute.deterministic}
    if device.type == "cuda":
        if compute.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            applied["cublas_workspace_config"] = os.environ["CUBLAS_WORKSPACE_CONFIG"]
        torch.use_deterministic_algorithms(compute.deterministic)
        torch.backends.cudnn.deterministic = compute.deterministic
        torch.backends.cudnn.benchmark = not compute.deterministic
    if data is not None and compute.channels_last:
        data.use_channels_last()
    return applied


def autocast(compute, device: torch.device):
    """bf16 autocast on the training device when compute.precision = bf16; a no-op context otherwise."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=compute is not None and compute.precision == "bf16")


class _LossWindow:
    """Losses since the last check, kept on the device: one host sync per check instead of one per step."""

    def __init__(self) -> None:
        self.first_step: int | None = None
        self.losses: list[torch.Tensor | float] = []
        self.running: torch.Tensor | float = math.nan  # EMA of the loss, for the progress bar and the log

    def add(self, step: int, loss: torch.Tensor | float) -> None:
        if self.first_step is None:
            self.first_step = step
        loss = loss.detach().float() if isinstance(loss, torch.Tensor) else float(loss)
        self.losses.append(loss)
        if isinstance(self.running, float) and math.isnan(self.running):
            self.running = loss
        else:
            self.running = 0.98 * self.running + 0.02 * loss

    def check(self, last_saved: int) -> None:
        """Raises DivergenceError if a loss in the window is not finite; empties the window."""
        if not self.losses:
            return
        device = next((v.device for v in self.losses if isinstance(v, torch.Tensor)), torch.device("cpu"))
        values = torch.stack([v.reshape(()) if isinstance(v, torch.Tensor) else torch.tensor(v, device=device) for v in self.losses])
        finite = torch.isfinite(values)
        if not bool(finite.all()):  # the one host sync of the window
            bad = int((~finite).nonzero()[0, 0])
            first, last = self.first_step, self.first_step + len(self.losses) - 1
            # Steps are counted as in checkpoints and status.json: step k is the k-th optimiser step.
            raise DivergenceError(
                f"training diverged: loss={float(values[bad].cpu())} at step {first + bad + 1} (steps {first + 1}..{last + 1} "
                f"were checked together); the last good checkpoint (step {last_saved}) is kept -- lower train.lr, or clip "
                f"harder with a smaller positive train.grad_clip, and start a new run with --name"
            )
        self.first_step, self.losses = None, []

    def running_value(self) -> float:
        return float(self.running)


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
    check_finite_every: int = 1,
    compute=None,
) -> int:
    """Run steps start_step .. strategy.training_steps()-1; returns the number of steps completed.

    Losses are checked for finiteness every `check_finite_every` steps and always before a checkpoint is
    written, so a checkpoint never holds weights trained past a non-finite loss.
    """
    total = strategy.training_steps()
    last_saved = start_step
    window = _LossWindow()
    with _StopFlag() as stop, tqdm(total=total, initial=start_step, desc="train", unit="step", disable=not progress) as bar:
        for step in range(start_step, total):
            images, labels = data.train_batch(seed, step)
            forced = None
            for hook in hooks:
                forced = hook.forced_arch(step) or forced
            with autocast(compute, data.device):
                loss = strategy.train_step(step, images, labels, forced)
            window.add(step, loss)
            for hook in hooks:
                hook.after_step(step + 1, strategy)
            done = step + 1
            checkpoint = done % checkpoint_every == 0 or done == total or stop.requested
            if checkpoint or done % check_finite_every == 0:
                window.check(last_saved)
                if progress:
                    bar.set_postfix(loss=f"{window.running_value():.3f}")
            if checkpoint:
                save_checkpoint(done)
                last_saved = done
            bar.update(1)
            if done % max(1, total // 10) == 0:
                log(f"step {done}/{total} loss(ema)={window.running_value():.4f}")
            if stop.requested and done < total:
                raise HarnessError(
                    f"interrupted by {stop.requested} after step {done}/{total}; checkpoint saved -- continue with --resume"
                )
    strategy.on_train_end()
    return total
