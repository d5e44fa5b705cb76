"""The eager twin of a compiled setting: speedup over eager and memory compression, measured in the same process.

Eager and compiled settings of a profile run minutes apart, so their ratio carries the machine's drift. The twin
calls the same model object on the same input (a training step: the same optimizer and scaler) without
torch.compile, in blocks that alternate with blocks of the compiled call (C E, E C, C E, ...), each block after an
untimed call that refills the caches the other one evicted. Each pair of blocks gives one log(eager / compiled)
of the two block medians; drift slower than a pair cancels. The pairs share one process, so a per-process offset
(memory placement, a core) moves both sides; the interval is a t interval over the pairs (scipy.stats).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from vitcnn.measure import memory
from vitcnn.measure.timing import gc_paused, plain_timer, synchronize

PAIRS = 10  # pairs of blocks; 9 degrees of freedom for the interval
SECONDS = 2.0  # about this much time for all blocks of both sides together
CONFIDENCE = 0.95
FIELDS = ("speedup_vs_eager", "speedup_ci_low", "speedup_ci_high", "speedup_log_ratios", "eager_twin_median_s",
          "eager_activation_peak_bytes", "memory_compression")
NOT_MEASURED = dict.fromkeys(FIELDS)


@dataclass(frozen=True)
class Speedup:
    """Eager time / compiled time (> 1: compiling helps), with its interval and the number of pairs."""

    ratio: float
    ci_low: float
    ci_high: float
    pairs: int


def speedup(log_ratios: list[float], confidence: float = CONFIDENCE) -> Speedup:
    """The geometric mean of the pairs' eager/compiled ratios and its t interval (equal ratios: a point; one
    pair: unbounded)."""
    logs = np.asarray(log_ratios, dtype=float)
    if logs.size == 0:
        raise ValueError("no pairs of blocks")
    mean = float(logs.mean())
    if logs.size < 2:
        low, high = -math.inf, math.inf
    elif float(logs.std(ddof=1)) == 0:
        low = high = mean
    else:
        interval = stats.ttest_1samp(logs, 0.0).confidence_interval(confidence)
        low, high = float(interval.low), float(interval.high)
    return Speedup(math.exp(mean), math.exp(low), math.exp(high), int(logs.size))


def block_calls(compiled_s: float, eager_s: float, pairs: int = PAIRS, seconds: float = SECONDS) -> int:
    """Calls per block so that all 2 x `pairs` blocks take about `seconds` (at least one call each)."""
    per_pair = max(compiled_s + eager_s, 1e-9)
    return max(1, round(seconds / pairs / per_pair))


def time_pairs(compiled: Callable[[], None], eager: Callable[[], None], pairs: int, calls: int
               ) -> tuple[list[float], list[float]]:
    """log(eager / compiled) of each pair of blocks, and the eager block medians; the order alternates per pair."""
    log_ratios, eager_medians = [], []
    with gc_paused():
        for i in range(pairs):
            order = (("compiled", compiled), ("eager", eager))
            medians = {}
            for name, call in (order if i % 2 == 0 else order[::-1]):
                call()
                medians[name] = statistics.median(plain_timer(call, calls))
            log_ratios.append(math.log(medians["eager"] / medians["compiled"]))
            eager_medians.append(medians["eager"])
    return log_ratios, eager_medians


def activation_peak(call: Callable[[], None], device: torch.device) -> int:
    """Bytes one call allocates beyond what is held before it (CUDA: the allocator's peak counter; CPU: the
    profiler's allocator events, memory.cpu_peak)."""
    if device.type != "cuda":
        return memory.cpu_peak(call)[0]
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    call()
    return torch.cuda.max_memory_allocated(device) - before


def measure_twin(compiled: Callable[[], None], eager: Callable[[], None], compiled_s: float,
                 compiled_peak_bytes: int | None, device: torch.device, pairs: int = PAIRS,
                 seconds: float = SECONDS) -> dict:
    """The twin's fields: speedup with its interval and the raw pair log-ratios (what the gate tests), the eager
    median, and memory compression (eager activation peak / compiled activation peak)."""
    eager()  # eager has not run in this process's timing loop yet: one call to warm its allocator and caches
    eager_s = statistics.median(plain_timer(eager, 3))
    log_ratios, eager_medians = time_pairs(compiled, eager, pairs, block_calls(compiled_s, eager_s, pairs, seconds))
    result = speedup(log_ratios)
    eager_peak = activation_peak(eager, device)

    def bounded(value: float) -> float | None:  # JSON has no infinity: an unbounded end (0 or inf) is None
        return value if 0 < value < math.inf else None

    return {"speedup_vs_eager": result.ratio, "speedup_ci_low": bounded(result.ci_low),
            "speedup_ci_high": bounded(result.ci_high),
            "speedup_log_ratios": log_ratios, "eager_twin_median_s": statistics.median(eager_medians),
            "eager_activation_peak_bytes": eager_peak,
            "memory_compression": eager_peak / compiled_peak_bytes if compiled_peak_bytes else None}
