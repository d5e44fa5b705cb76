"""Gate rule for activation memory: `memory-up` / `memory-down` beyond max(relative, absolute) tolerance.

Deterministic for a graph on one machine kind (the allocator's peak, or on a CPU the profiler's allocator events),
so one run on each side decides it.
"""

from __future__ import annotations

from vitcnn.gate.metrics import Finding, GateOptions, Metric
from vitcnn.result import Result
from vitcnn.table import MIB


def rule(metric: Metric, base: Result, new: Result, options: GateOptions) -> Finding:
    """Memory label (None when within tolerance or not measured on both sides) and detail."""
    b, n = base.activation_peak_bytes, new.activation_peak_bytes
    if b is None or n is None:
        return Finding(None, "")
    allowed = max(options.memory_rel_tolerance * b, options.memory_abs_tolerance)
    delta = n - b
    text = f"memory {delta / MIB:+.1f} MiB"
    up, down = metric.labels
    if delta > allowed:
        return Finding(up, text)
    if -delta > allowed:
        return Finding(down, text)
    return Finding(None, "")
