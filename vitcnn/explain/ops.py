"""A prepared setting's calls under torch.profiler: what each op cost, for the op-level diff of an explanation.

The profile runs after the timed blocks and is never timed itself: the profiler's own overhead (a few microseconds
per op) is in every op of both sides alike, which a diff of the two sides can bear and a timing could not.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from vitcnn.explain import DEFAULT_CALLS


def profile_ops(call: Callable[[], None], device: torch.device, calls: int = DEFAULT_CALLS,
                trace: Path | None = None) -> dict:
    """Profile `calls` calls of `call` (already warmed up) on `device`; the per-op totals over those calls and, where
    `trace` is given, a Chrome/Perfetto trace written there.

    Returns {"calls": n, "device": "cpu"|"cuda", "ops": {name: {"count", "self_cpu_us", "self_device_us",
    "flops", "kernel"}}}: totals over the `calls` calls, grouped by op name (shapes not recorded: a planted op shows
    up as more calls of its name). On a GPU a kernel is listed twice, as the device's own event ("kernel": true) and
    in the device time of the CPU op that launched it: a reader takes one of the two (diff.per_call_ops)."""
    if calls < 1:
        raise ValueError(f"calls must be >= 1, got {calls}")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, with_flops=True) as prof:
        for _ in range(calls):
            call()
    if trace is not None:
        trace.parent.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(trace))
    ops = {}
    for event in prof.key_averages():
        ops[event.key] = {"count": int(event.count), "self_cpu_us": float(event.self_cpu_time_total),
                          "self_device_us": float(getattr(event, "self_device_time_total", 0.0) or 0.0),
                          "flops": int(event.flops or 0), "kernel": event.device_type != DeviceType.CPU}
    return {"calls": calls, "device": device.type, "ops": ops}
