"""Peak bytes torch allocates on a CPU during one call, from the profiler's allocator events.

A CPU has no `max_memory_allocated`: torch's CPU allocator keeps no peak counter. With `profile_memory=True`
the profiler records every allocation and free of torch's CPU allocator (size and time), which is also what
inductor's compiled CPU code allocates its buffers with, so compiled and eager calls are seen alike. Blocks that
existed before the call are not in the events (neither their allocation nor their free), so the running sum of
the events, in time order, is what the call holds on top of what existed; its maximum is the call's peak.

Memory is deterministic where time is not: one call after timing gives the same peak as any warm call.
"""

from __future__ import annotations

from collections.abc import Callable

MEMORY_EVENT = "[memory]"


def _is_cpu(event) -> bool:
    # DeviceType.CPU, and the oneDNN device types whose blocks also come from the CPU allocator
    return str(event.device_type()).rsplit(".", 1)[-1] in ("CPU", "MKLDNN", "IDEEP")


def allocator_events(call: Callable[[], object]) -> list[tuple[int, int]]:
    """(time in ns, bytes: + allocated / - freed) of every CPU allocator event during `call()`, in time order."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    events = [(e.start_ns(), int(e.nbytes())) for e in prof.profiler.kineto_results.events()
              if e.name() == MEMORY_EVENT and _is_cpu(e)]
    # At equal times, allocations first: the peak is never understated by the order of simultaneous events.
    return sorted(events, key=lambda event: (event[0], -event[1]))


def peak_of(events: list[tuple[int, int]]) -> int:
    """Maximum of the running total of allocator events (0 for none): the most bytes held at any moment."""
    held = peak = 0
    for _, nbytes in events:
        held += nbytes
        peak = max(peak, held)
    return peak


def cpu_peak_bytes(call: Callable[[], object]) -> int:
    """Peak bytes torch's CPU allocator held during `call()` on top of what was allocated before it."""
    return peak_of(allocator_events(call))
