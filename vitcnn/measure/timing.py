"""Timing one synchronised call at a time, warming up honestly, and what the GPU itself spent.

- GPU work is asynchronous, so each timed call ends with a sync (the wall time a user waits for).
- Python's cyclic garbage collector can pause any call for milliseconds: it is collected, frozen and disabled
  around warm-up and timing, and re-enabled afterwards (also when the call raises).
- Warm-up runs for a time, not a call count, so a fast call is not cut short by a round limit.
- Device time: CUDA events around a call whose stream is first held busy (`torch.cuda._sleep`) until the host has
  queued every kernel measure the GPU's own execution time, without launch gaps. Its ratio to the wall time is
  `gpu_busy`: well below 1 means the setting is launch-bound (CPU overhead), not GPU-bound.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch


def synchronize(device: torch.device) -> None:
    """Wait for all work queued on `device` (nothing to wait for on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_timer(call: Callable[[], None], rounds: int) -> list[float]:
    """Seconds per call with perf_counter; `call` must synchronise itself."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


@contextmanager
def gc_paused() -> Iterator[None]:
    """Collect, freeze and disable the cyclic GC for the block; undo all of it on exit, even on an exception.
    Inside another pause (the GC already off) it does nothing: with torch loaded a collection costs more than
    0.1 s, which `vitcnn ab` would otherwise pay before every short block (its workers pause once per setting).
    A process that froze its own long-lived objects (a `vitcnn ab` worker, between settings) keeps them frozen:
    unfreezing them would make every later collection scan them again (~0.27 s each on the 2-core VM)."""
    if not gc.isenabled():
        yield
        return
    gc.collect()
    owns_freeze = gc.get_freeze_count() == 0
    if owns_freeze:
        gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if owns_freeze:
            gc.unfreeze()
        gc.enable()


def warm_up(call: Callable[[], None], min_calls: int, min_seconds: float) -> list[float]:
    """Call until at least `min_calls` calls AND `min_seconds` of wall time have passed; seconds of each call."""
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < min_calls or time.perf_counter() - start < min_seconds:
        samples += plain_timer(call, 1)
    return samples


def _cycles_per_second(cuda) -> float:
    """How many `_sleep` cycles the GPU spins per second (calibrated with events once per call site)."""
    start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
    cycles = 5_000_000
    cuda._sleep(1000)  # the first launch loads the kernel: outside the calibration
    cuda.synchronize()
    start.record()
    cuda._sleep(cycles)
    end.record()
    cuda.synchronize()
    return cycles / max(start.elapsed_time(end) / 1e3, 1e-6)


def device_seconds(enqueue: Callable[[], None], rounds: int, hold_seconds: float, cuda=torch.cuda) -> list[float]:
    """Seconds of GPU execution per call of `enqueue` (which must NOT synchronise), from CUDA events.

    Before each call the stream is held by a spin kernel for `hold_seconds` (longer than the host needs to queue
    the call), so the events bracket back-to-back kernels: device time without launch gaps. `cuda` is the
    torch.cuda module (a stand-in in CPU tests).
    """
    cycles = int(hold_seconds * _cycles_per_second(cuda))
    samples = []
    for _ in range(rounds):
        start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
        cuda._sleep(cycles)
        start.record()
        enqueue()
        end.record()
        cuda.synchronize()
        samples.append(start.elapsed_time(end) / 1e3)
    return samples


def gpu_busy(device_samples: list[float], wall_samples: list[float]) -> float | None:
    """Median device time / median wall time per call (None without both)."""
    if not device_samples or not wall_samples:
        return None
    return statistics.median(device_samples) / statistics.median(wall_samples)


def device_time_fields(call: Callable[[], None], device: torch.device, samples: list[float], rounds: int) -> dict:
    """CUDA only: device seconds per call (events, no launch gaps) and gpu_busy; None on CPU or on failure."""
    fields = {"gpu_time_s": None, "gpu_busy": None, "gpu_time_error": None}
    if device.type != "cuda" or not samples:
        return fields
    try:
        device_samples = device_seconds(call, rounds, 1.5 * statistics.median(samples) + 1e-3)
    except Exception as exc:
        fields["gpu_time_error"] = f"{type(exc).__name__}: {exc}"
        return fields
    return {**fields, "gpu_time_s": statistics.median(device_samples), "gpu_busy": gpu_busy(device_samples, samples)}
