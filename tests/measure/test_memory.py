"""CPU peak memory from the profiler's allocator events, checked against sizes known in advance."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from vitcnn.measure import memory

N = 512
MATRIX = N * N * 4  # bytes of one N x N fp32 matrix: 1 MiB


def operands():
    torch.manual_seed(0)
    return torch.randn(N, N), torch.randn(N, N)


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(1, 50), st.integers(1, 10**6)), max_size=30))
def test_peak_is_the_most_bytes_alive_at_any_moment(blocks):
    """Oracle independent of the running total: blocks as lifetimes [start, end), and at each allocation instant the
    bytes alive then, counting blocks freed at that same instant too (allocations are ordered first)."""
    lifetimes = [(start, start + length, size) for start, length, size in blocks]
    events = sorted([(start, size) for start, _, size in lifetimes] + [(end, -size) for _, end, size in lifetimes],
                    key=lambda e: (e[0], -e[1]))
    expected = max([0, *(sum(size for start, end, size in lifetimes if start <= t <= end)
                         for t in {start for start, _, _ in lifetimes})])
    assert memory.peak_of(events) == expected


def test_one_matmul_holds_its_output():
    a, b = operands()
    assert abs(memory.cpu_peak_bytes(lambda: a @ b) - MATRIX) <= 0.05 * MATRIX


def test_a_chain_of_ops_holds_two_outputs_at_once():
    a, b = operands()
    # a @ b is alive while relu writes its output; then relu's output is alive while mul writes its own
    peak = memory.cpu_peak_bytes(lambda: (a @ b).relu().mul(2.0).sum())
    assert abs(peak - 2 * MATRIX) <= 0.05 * 2 * MATRIX


def test_tensors_from_before_the_call_are_not_counted_and_their_free_is_not_negative():
    a, b = operands()
    held = [torch.randn(N, N) for _ in range(4)]

    def call():
        out = a @ b
        held.clear()  # frees 4 MiB allocated before profiling: invisible, never a negative total
        return out

    assert abs(memory.cpu_peak_bytes(call) - MATRIX) <= 0.05 * MATRIX


def test_inductor_buffers_are_seen():
    a, b = operands()
    compiled = torch.compile(lambda x, y: (x @ y).relu() + 1.0, dynamic=False)
    compiled(a, b)  # compile outside the watched call
    peak = memory.cpu_peak_bytes(lambda: compiled(a, b))
    # at least the output buffer, at most the matmul buffer and a separate output (inductor may write in place)
    assert 0.95 * MATRIX <= peak <= 1.05 * 2 * MATRIX
    events = memory.allocator_events(lambda: compiled(a, b))
    assert sum(n for _, n in events if n > 0) >= MATRIX and sum(n for _, n in events) == 0  # all freed again


@st.composite
def alloc_free_sequences(draw):
    """Allocations and frees of blocks made during the call, each block freed at most once after its allocation."""
    events, live, time_ns = [], {}, 0
    for ptr in range(draw(st.integers(0, 30))):
        time_ns += draw(st.integers(0, 3))
        if live and draw(st.booleans()):
            gone = draw(st.sampled_from(sorted(live)))
            events.append(memory.AllocatorEvent(time_ns, -live.pop(gone), gone, "free"))
        size = draw(st.integers(1, 10**6))
        live[ptr] = size
        events.append(memory.AllocatorEvent(time_ns, size, ptr, draw(st.sampled_from(["aten::mm", "aten::add"]))))
    return sorted(events, key=lambda e: (e.time_ns, -e.nbytes))


@given(alloc_free_sequences())
def test_the_holders_at_the_peak_hold_exactly_the_peak(events):
    holders = memory.holders_at_peak(events, top=10)
    assert sum(h["bytes"] for h in holders) == memory.peak_of([(e.time_ns, e.nbytes) for e in events])
    assert [h["bytes"] for h in holders] == sorted((h["bytes"] for h in holders), reverse=True)


def test_the_op_that_allocated_a_matmul_output_holds_it_at_the_peak():
    a, b = operands()
    peak, holders = memory.cpu_peak(lambda: (a @ b).relu().sum())
    assert abs(peak - 2 * MATRIX) <= 0.05 * 2 * MATRIX
    ops = {h["op"]: h["bytes"] for h in holders}
    assert abs(ops.pop("aten::mm") - MATRIX) <= 0.05 * MATRIX
    # relu's output, named by the innermost op that allocated it (relu dispatches to clamp_min on a CPU)
    assert len(ops) == 1 and next(iter(ops)) in ("aten::relu", "aten::clamp_min")
    assert abs(next(iter(ops.values())) - MATRIX) <= 0.05 * MATRIX


def test_a_block_freed_before_the_peak_is_not_a_holder():
    events = [memory.AllocatorEvent(0, 100, 1, "aten::a"), memory.AllocatorEvent(1, -100, 1, "free"),
              memory.AllocatorEvent(2, 60, 2, "aten::b"), memory.AllocatorEvent(3, 70, 3, "aten::c"),
              memory.AllocatorEvent(4, -50, 99, "free of a block from before the call")]
    assert memory.holders_at_peak(events) == [{"op": "aten::c", "bytes": 70, "blocks": 1},
                                              {"op": "aten::b", "bytes": 60, "blocks": 1}]
