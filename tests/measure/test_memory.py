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


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(-10**6, 10**6)), max_size=40))
def test_peak_is_the_highest_running_total(events):
    events = sorted(events, key=lambda e: (e[0], -e[1]))
    totals = [sum(n for _, n in events[:i + 1]) for i in range(len(events))]
    assert memory.peak_of(events) == max([0, *totals])


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
