"""Gate rule for instruction counts (vitcnn/measure/instructions.py): `instructions-up` / `instructions-down`.

A count is deterministic up to a small spread (a process's allocator and hash layout, libgomp's barrier wake-ups):
no statistics, one relative tolerance, chosen from A/A runs (docs/instructions.md has them). It decides a setting
from one run on each side, on any machine whose counting setup is the same (valgrind emulates one AVX2 CPU), so it
gates where wall time on a shared runner cannot. It sees the work a call does on the AVX2 build of the graph; not
memory traffic, the host's own ISA paths or a GPU (the docs list what only timing sees).
"""

from __future__ import annotations

from vitcnn.gate.metrics import INSTRUCTIONS, Finding, GateOptions, Metric
from vitcnn.result import Result

FIELD = INSTRUCTIONS.field
# 1%: A/A spread on the 2-core VM was far below it (docs/instructions.md)
DEFAULT_TOLERANCE = INSTRUCTIONS.parameters[0].default


def per_call(result: Result | None) -> float | None:
    """Instructions of one call of a result that ran and was counted (None otherwise)."""
    if result is None or result.status != "ok":
        return None
    value = result.get(FIELD)
    return float(value) if value else None


def finding(base: Result, new: Result, tolerance: float = DEFAULT_TOLERANCE) -> Finding:
    """`instructions-up` when the new count exceeds the base by more than `tolerance` (relative), `instructions-down`
    when it fell by more; no label (but the change, in the detail) within it or when a side was not counted."""
    b, n = per_call(base), per_call(new)
    if b is None or n is None:
        return Finding(None, "")
    ratio = n / b
    detail = f"instructions {ratio - 1:+.2%} ({b / 1e6:,.1f}M -> {n / 1e6:,.1f}M per call)"
    up, down = INSTRUCTIONS.labels
    if ratio - 1 > tolerance:
        return Finding(up, detail, ratio)
    if 1 - ratio > tolerance:
        return Finding(down, detail, ratio)
    return Finding(None, detail, ratio)


def rule(metric: Metric, base: Result, new: Result, options: GateOptions) -> Finding:
    """The gate's rule: finding() at the options' tolerance."""
    return finding(base, new, options.instructions_tolerance)
