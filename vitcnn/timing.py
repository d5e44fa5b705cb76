"""Timing one synchronised call at a time: GPU work is asynchronous, so each timed call ends with a sync."""

from __future__ import annotations

import time
from collections.abc import Callable

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
