"""Gate rule for FLOP counts (vitcnn/measure/flops.py): `flops-up` / `flops-down`.

The count is exact: the FLOP formulas of torch.utils.flop_counter (matmuls, convolutions, attention) applied to the
shapes of one call, independent of the machine and of its noise. So one run on each side decides it, on any device,
where a planted or accidental extra matmul changes the work a call does; a shared 2-core runner whose wall time
cannot see a 10% slowdown still sees 10% more FLOPs. It cannot see what costs time without FLOPs: a slower kernel for
the same op, elementwise or memory-bound work, launch overhead, a worse fusion. Across torch versions the counter's
formulas can change too; the detail names both counts.
"""

from __future__ import annotations

from vitcnn.gate.metrics import Finding, GateOptions, Metric
from vitcnn.result import Result


def rule(metric: Metric, base: Result, new: Result, options: GateOptions) -> Finding:
    """`flops-up` when the new count exceeds the base by more than the tolerance (relative), `flops-down` when it
    fell by more; no label when a side has no count or one side's count is incomplete (`flops_error`) and the
    other's is not: those two are not the same sum."""
    b, n = base.flops, new.flops
    if not b or not n:
        return Finding(None, "")
    if bool(base.flops_error) != bool(new.flops_error):
        return Finding(None, "FLOPs not compared: one side's count is incomplete")
    ratio = n / b
    detail = f"FLOPs {ratio - 1:+.2%} ({b / 1e9:,.3f} -> {n / 1e9:,.3f} GFLOP per call)"
    up, down = metric.labels
    if ratio - 1 > options.flops_tolerance:
        return Finding(up, detail, ratio)
    if 1 - ratio > options.flops_tolerance:
        return Finding(down, detail, ratio)
    return Finding(None, "")
