"""Timing: one sample per synchronised call, GC paused and restored, warm-up by time, device time from events."""

from __future__ import annotations

import gc
import time

import pytest
import torch

from vitcnn.timing import device_seconds, gc_paused, gpu_busy, plain_timer, synchronize, warm_up


def test_plain_timer_returns_one_sample_per_call():
    calls = []
    samples = plain_timer(lambda: (calls.append(1), time.sleep(0.01)), 3)
    assert len(samples) == len(calls) == 3
    assert all(0.009 < s < 0.5 for s in samples)


def test_synchronize_on_cpu_returns():
    synchronize(torch.device("cpu"))


def test_gc_is_paused_inside_and_restored_after_even_on_error():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled() and gc.get_freeze_count() > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("call failed")
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_warm_up_runs_for_its_time_however_fast_the_call():
    start = time.perf_counter()
    samples = warm_up(lambda: None, min_calls=3, min_seconds=0.05)
    assert time.perf_counter() - start >= 0.05 and len(samples) > 1000  # not cut at a round limit
    assert len(warm_up(lambda: time.sleep(0.001), min_calls=5, min_seconds=0.0)) == 5


class _HostClockCuda:
    """torch.cuda stand-in: events read the host clock, `_sleep` holds nothing. Exercises device_seconds on CPU."""

    class Event:
        def __init__(self, enable_timing=False):
            self.t = None

        def record(self):
            self.t = time.perf_counter()

        def elapsed_time(self, other):
            return (other.t - self.t) * 1e3

    slept: list = []

    @classmethod
    def _sleep(cls, cycles):
        cls.slept.append(cycles)

    @staticmethod
    def synchronize():
        pass


def test_device_seconds_brackets_each_call_with_events_after_holding_the_stream():
    samples = device_seconds(lambda: time.sleep(0.002), rounds=4, hold_seconds=0.01, cuda=_HostClockCuda)
    assert len(samples) == 4 and all(0.0015 < s < 0.1 for s in samples)
    assert len(_HostClockCuda.slept) == 5 and _HostClockCuda.slept[-1] > 0  # calibration + one hold per call


def test_gpu_busy_is_device_over_wall():
    assert gpu_busy([0.002, 0.002, 0.003], [0.010, 0.010, 0.011]) == pytest.approx(0.2)
    assert gpu_busy([], [0.01]) is None
