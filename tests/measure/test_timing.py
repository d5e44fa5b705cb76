"""Timing: one sample per synchronised call, GC paused and restored, warm-up by time, device time from events;
and the harness's timing is the true call time, checked against torch.utils.benchmark interleaved in one process
(separate runs on a shared CPU differ by up to ~1.8x, so comparing two separate runs would test the machine)."""

from __future__ import annotations

import gc
import statistics
import time

import pytest
import torch
import torch.utils.benchmark as torch_benchmark

from tests.factories import setting
from vitcnn.measure import compiling, pipeline
from vitcnn.measure.pipeline import MeasureOptions
from vitcnn.measure.timing import (
    device_seconds,
    gc_paused,
    gpu_busy,
    plain_timer,
    synchronize,
    warm_up,
)
from vitcnn.zoo import models

BLOCKS = 15  # interleaved blocks per side
CALLS_PER_BLOCK = 10


def test_plain_timer_returns_one_sample_per_call():
    calls = []
    samples = plain_timer(lambda: (calls.append(1), time.sleep(0.01)), 3)
    assert len(samples) == len(calls) == 3
    assert all(0.009 < s < 0.5 for s in samples)


def test_synchronize_on_cpu_returns():
    synchronize(torch.device("cpu"))


def harness_vs_reference(s) -> tuple[float, float]:
    """Measure `s` through the harness, alternating blocks of the harness's own timed calls with blocks of
    torch.utils.benchmark.Timer on the same model and input. Returns (median of the per-block ratios
    harness/reference, harness-reported median_s / median reference per-call time)."""
    captured: dict = {}

    def build(name, img_size):
        captured["model"] = models.build(name, img_size)
        return captured["model"]

    ratios, reference = [], []

    def interleaved_timer(call, rounds: int) -> list[float]:
        x = torch.randn(s.batch, 3, s.resolution, s.resolution)
        timer = torch_benchmark.Timer("model(x)", globals={"model": captured["model"], "x": x},
                                      num_threads=torch.get_num_threads())
        samples: list[float] = []
        for block in range(BLOCKS):
            ours = plain_timer(call, CALLS_PER_BLOCK)
            theirs = timer.timeit(CALLS_PER_BLOCK).median  # seconds per call over this block
            samples += ours
            reference.append(theirs)
            ratios.append(statistics.median(ours) / theirs)
        return samples

    outcome = pipeline.measure(s, "cpu", timer=interleaved_timer, options=MeasureOptions(warmup_seconds=0.3),
                              build=build)
    assert outcome.status == "ok", outcome.reason
    return statistics.median(ratios), outcome.info["median_s"] / statistics.median(reference)


def test_harness_timing_agrees_with_torch_utils_benchmark_interleaved():
    block_ratio, reported_ratio = harness_vs_reference(setting("convnext_atto", 64))
    assert block_ratio == pytest.approx(1, abs=0.10)
    assert reported_ratio == pytest.approx(1, abs=0.15)


def test_interleaved_check_sees_a_harness_that_times_extra_work(monkeypatch):
    """The check above can fail: a harness whose timed call also runs the model a second time reads ~2x."""
    real_synchronize = pipeline.synchronize
    captured_calls = []

    def synchronize_after_a_second_call(device):
        if captured_calls:
            captured_calls[-1]()
        real_synchronize(device)

    original_compile = compiling.compile_model

    def compile_and_capture(model, mode):
        compiled = original_compile(model, mode)
        x = torch.randn(1, 3, 64, 64)
        captured_calls.append(lambda: compiled(x))
        return compiled

    monkeypatch.setattr(compiling, "compile_model", compile_and_capture)
    monkeypatch.setattr(pipeline, "synchronize", synchronize_after_a_second_call)
    block_ratio, _ = harness_vs_reference(setting("convnext_atto", 64))
    assert block_ratio > 1.5


def test_gc_is_paused_inside_and_restored_after_even_on_error():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled() and gc.get_freeze_count() > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("call failed")
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_pause_inside_a_pause_neither_collects_nor_ends_the_outer_one(monkeypatch):
    """`vitcnn ab` workers pause the GC for a whole setting; the pause of each block inside must cost nothing."""
    collections = []
    real_collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *args: collections.append(args) or real_collect(*args))
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled() and gc.get_freeze_count() > 0  # the inner exit left the outer pause alone
    assert len(collections) == 1 and gc.isenabled() and gc.get_freeze_count() == 0


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
            _HostClockCuda.calls.append("record")

        def elapsed_time(self, other):
            return (other.t - self.t) * 1e3

    slept: list = []
    calls: list = []

    @classmethod
    def _sleep(cls, cycles):
        cls.slept.append(cycles)
        cls.calls.append("sleep")

    @classmethod
    def synchronize(cls):
        cls.calls.append("synchronize")


def test_device_seconds_brackets_each_call_with_events_after_holding_the_stream():
    samples = device_seconds(lambda: time.sleep(0.002), rounds=4, hold_seconds=0.01, cuda=_HostClockCuda)
    assert len(samples) == 4 and all(0.0015 < s < 0.1 for s in samples)
    assert len(_HostClockCuda.slept) == 6 and _HostClockCuda.slept[-1] > 0  # warm-up, calibration, one hold per call
    # the first launch (which loads the spin kernel) is finished before the calibration's first event
    assert _HostClockCuda.calls[:3] == ["sleep", "synchronize", "record"]


def test_gpu_busy_is_device_over_wall():
    assert gpu_busy([0.002, 0.002, 0.003], [0.010, 0.010, 0.011]) == pytest.approx(0.2)
    assert gpu_busy([], [0.01]) is None
