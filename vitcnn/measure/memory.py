"""Peak bytes torch allocates on a CPU during one call, from the profiler's allocator events.

A CPU has no `max_memory_allocated`: torch's CPU allocator keeps no peak counter. With `profile_memory=True`
the profiler records every allocation and free of torch's CPU allocator (size and time), which is also what
inductor's compiled CPU code allocates its buffers with, so compiled and eager calls are seen alike. Blocks that
existed before the call are not in the events (neither their allocation nor their free), so the running sum of
the events, in time order, is what the call holds on top of what existed; its maximum is the call's peak.

Each event also carries its block's address and the op it happened in (the profiler's event tree), so the blocks
alive at the peak can be named by the ops that allocated them: where a peak's bytes went.

Memory is deterministic where time is not: one call after timing gives the same peak as any warm call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

TOP_HOLDERS = 5  # ops named per setting in the run file
UNATTRIBUTED = "(no op: allocated outside any recorded op)"


@dataclass(frozen=True)
class AllocatorEvent:
    """One allocation (+bytes) or free (-bytes) of a block at `ptr`, and the innermost op running when it happened."""

    time_ns: int
    nbytes: int
    ptr: int
    op: str


def _owner(event) -> str:
    """The innermost op or record_function around an allocation (inductor's generated code allocates inside the
    compiled graph's record_function, eager calls inside their aten op)."""
    parent = event.parent
    return parent.name if parent is not None else UNATTRIBUTED


def _walk(roots):
    stack = list(roots)
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        yield event


def allocator_trace(call: Callable[[], object], device_type: str = "cpu") -> list[AllocatorEvent]:
    """Every allocation and free of `device_type`'s allocator during `call()`, with its block and op, in time
    order (allocations first at equal times: the peak is never understated by the order of simultaneous events)."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    types = ("cpu", "mkldnn") if device_type == "cpu" else (device_type,)  # oneDNN blocks come from the CPU allocator
    events = [AllocatorEvent(e.start_time_ns, int(e.extra_fields.alloc_size), int(e.extra_fields.ptr), _owner(e))
              for e in _walk(prof.profiler.kineto_results.experimental_event_tree())
              if e.tag == _EventType.Allocation and e.extra_fields.device.type in types]
    return sorted(events, key=lambda event: (event.time_ns, -event.nbytes))


def allocator_events(call: Callable[[], object]) -> list[tuple[int, int]]:
    """(time in ns, bytes: + allocated / - freed) of every CPU allocator event during `call()`, in time order."""
    return [(event.time_ns, event.nbytes) for event in allocator_trace(call)]


def _first_peak(sizes: Iterable[int]) -> tuple[int, int]:
    """(maximum of the running total, index of the event that first reached it); (0, -1) if it never rose above 0."""
    held = peak = 0
    peak_index = -1
    for index, nbytes in enumerate(sizes):
        held += nbytes
        if held > peak:
            peak, peak_index = held, index
    return peak, peak_index


def peak_of(events: list[tuple[int, int]]) -> int:
    """Maximum of the running total of allocator events (0 for none): the most bytes held at any moment."""
    return _first_peak(nbytes for _, nbytes in events)[0]


def holders_at_peak(events: list[AllocatorEvent], top: int = TOP_HOLDERS) -> list[dict]:
    """The ops whose blocks were alive at the first moment of the peak, most bytes first: where a peak's bytes
    went. Frees of blocks allocated before the call are not blocks of the call and are skipped."""
    _, peak_index = _first_peak(event.nbytes for event in events)
    live: dict[int, AllocatorEvent] = {}
    for event in events[:peak_index + 1]:
        if event.nbytes > 0:
            live[event.ptr] = event
        else:
            live.pop(event.ptr, None)
    by_op: dict[str, list[int]] = {}
    for event in live.values():
        by_op.setdefault(event.op, []).append(event.nbytes)
    ranked = sorted(by_op.items(), key=lambda item: (-sum(item[1]), item[0]))
    return [{"op": op, "bytes": sum(sizes), "blocks": len(sizes)} for op, sizes in ranked[:top]]


def cpu_peak(call: Callable[[], object]) -> tuple[int, list[dict]]:
    """Peak bytes torch's CPU allocator held during `call()` on top of what was allocated before it, and the ops
    holding the most of it at that moment."""
    events = allocator_trace(call)
    return _first_peak(event.nbytes for event in events)[0], holders_at_peak(events)


def cpu_peak_bytes(call: Callable[[], object]) -> int:
    """Peak bytes torch's CPU allocator held during `call()` on top of what was allocated before it."""
    return cpu_peak(call)[0]
