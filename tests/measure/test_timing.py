"""Timing: one sample per synchronised call, GC paused and restored, warm-up by time, device time from events;
and the harness's timing is the true call time: one model call per sample (counted), and the samples checked
against torch.utils.benchmark in paired blocks interleaved in one process (separate runs on a shared CPU differ by
up to ~1.8x, so comparing two separate runs would test the machine), with planted extra work it must see."""

from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import dataclass, field

import pytest
import torch
import torch.utils.benchmark as torch_benchmark
from scipy import stats

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


def test_plain_timer_returns_one_sample_per_call():
    calls = []
    samples = plain_timer(lambda: (calls.append(1), time.sleep(0.01)), 3)
    assert len(samples) == len(calls) == 3
    assert all(0.009 < s < 0.5 for s in samples)


def test_synchronize_waits_for_the_gpu_on_a_cuda_device_only(monkeypatch):
    waited = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: waited.append(device))
    synchronize(torch.device("cpu"))
    assert waited == []  # a CPU run never touches CUDA (and works on a machine without it)
    synchronize(torch.device("cuda", 1))
    assert waited == [torch.device("cuda", 1)]  # the device it was given, not the current one


PAIRS = (15, 45)  # paired blocks (one of the harness, one of the reference): at least, at most
CALLS_PER_BLOCK = 10
MARGIN = math.log(1.10)  # "agrees": the whole 95% interval of the median paired ratio within 1/1.1 .. 1.1


@dataclass
class Agreement:
    """Harness vs reference on one model in one process: paired blocks, and what the harness reported."""

    log_ratios: list[float] = field(default_factory=list)  # per pair: log(harness block mean / reference's)
    forwards_per_block: list[int] = field(default_factory=list)  # model forwards inside each harness block
    samples: list[float] = field(default_factory=list)  # every call the harness timed
    reported_median_s: float | None = None

    @property
    def interval(self) -> tuple[float, float]:
        """Distribution-free 95% interval of the median paired ratio (sign-test order statistics, scipy): one
        block that a neighbour on the machine stalled moves it by one order statistic, not by its size."""
        ci = stats.quantile_test(self.log_ratios, q=0, p=0.5).confidence_interval(0.95)
        return math.exp(ci.low), math.exp(ci.high)

    @property
    def verdict(self) -> str:
        low, high = map(math.log, self.interval)
        if -MARGIN < low and high < MARGIN:
            return "agrees"
        if low > MARGIN or high < -MARGIN:
            return "differs"
        return "unsettled"

    def __str__(self) -> str:
        low, high = self.interval
        return (f"{self.verdict}: harness/reference {math.exp(statistics.median(self.log_ratios)):.3f} "
                f"(95% interval {low:.3f}..{high:.3f}) over {len(self.log_ratios)} pairs")


def harness_vs_reference(s) -> Agreement:
    """Measure `s` through the harness with a timer that alternates blocks of the harness's own timed calls with
    blocks of torch.utils.benchmark.Timer on the same model and input shape, in ABBA order (pair k: harness first
    when k is even), so that drift of the machine falls on both sides of a pair alike. Each pair compares the same
    statistic (the mean call of a block after two untimed calls: Timer.timeit gives no per-call times). Pairs are
    added until the interval settles (agrees or differs) or PAIRS[1] is reached. One thread on both sides. Model
    forwards are counted in every harness block."""
    captured: dict = {}
    forwards = [0]

    def build(name, img_size):
        captured["model"] = model = models.build(name, img_size)
        model.register_forward_hook(lambda *args: forwards.__setitem__(0, forwards[0] + 1))
        return model

    result = Agreement()

    def interleaved_timer(call, rounds: int) -> list[float]:
        x = torch.randn(s.batch, 3, s.resolution, s.resolution)
        timer = torch_benchmark.Timer("model(x)", globals={"model": captured["model"], "x": x},
                                      num_threads=torch.get_num_threads())

        def ours() -> float:
            for _ in range(2):  # untimed, as Timer.timeit runs before its block
                call()
            before = forwards[0]
            samples = plain_timer(call, CALLS_PER_BLOCK)
            result.forwards_per_block.append(forwards[0] - before)
            result.samples.extend(samples)
            return statistics.fmean(samples)

        def theirs() -> float:
            return timer.timeit(CALLS_PER_BLOCK).mean  # seconds per call over this block (after 2 untimed)

        for pair in range(PAIRS[1]):
            if pair % 2 == 0:
                harness = ours()
                reference = theirs()
            else:
                reference = theirs()
                harness = ours()
            result.log_ratios.append(math.log(harness / reference))
            if pair + 1 >= PAIRS[0] and result.verdict != "unsettled":
                break
        return list(result.samples)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # both sides alike; on a shared 2-core machine, 2 threads stall on a busy neighbour
    try:
        outcome = pipeline.measure(s, "cpu", timer=interleaved_timer, options=MeasureOptions(warmup_seconds=0.3),
                                   build=build)
    finally:
        torch.set_num_threads(threads)
    assert outcome.status == "ok", outcome.reason
    result.reported_median_s = outcome.info["median_s"]
    return result


def test_harness_timing_agrees_with_torch_utils_benchmark_interleaved():
    """Each sample times exactly one call of the model (counted: deterministic), the reported median is the median
    of those samples (deterministic), and the samples agree with torch.utils.benchmark on the same model within
    10% (paired, interleaved blocks in one process, judged by an interval that outliers barely move)."""
    agreement = harness_vs_reference(setting("convnext_atto", 64))
    assert set(agreement.forwards_per_block) == {CALLS_PER_BLOCK}
    assert agreement.reported_median_s == statistics.median(agreement.samples)
    assert agreement.verdict != "differs", str(agreement)
    if agreement.verdict == "unsettled":  # 45 pairs did not settle it: the machine, not the harness (it happened
        # on the 2-core VM on 2026-12-06, when single settings moved 10-27% between processes); no verdict either way
        pytest.skip(f"too noisy to decide: {agreement}")


def _plant_in_the_timed_call(monkeypatch, extra) -> None:
    """After every call the harness times (inside its synchronize), run `extra(compiled model, input)` too."""
    real_synchronize = pipeline.synchronize
    compiled_calls = []

    def synchronize_after_extra_work(device):
        if compiled_calls:
            extra(*compiled_calls[-1])
        real_synchronize(device)

    original_compile = compiling.compile_model

    def compile_and_capture(model, mode):
        compiled = original_compile(model, mode)
        compiled_calls.append((compiled, torch.randn(1, 3, 64, 64)))
        return compiled

    monkeypatch.setattr(compiling, "compile_model", compile_and_capture)
    monkeypatch.setattr(pipeline, "synchronize", synchronize_after_extra_work)


def test_interleaved_check_sees_a_harness_that_times_extra_work(monkeypatch):
    """The check above can fail: a harness whose timed call also runs the model a second time times two forwards
    per sample (the count sees it) and reads ~2x (the timing sees it)."""
    _plant_in_the_timed_call(monkeypatch, lambda compiled, x: compiled(x))
    agreement = harness_vs_reference(setting("convnext_atto", 64))
    assert set(agreement.forwards_per_block) == {2 * CALLS_PER_BLOCK}
    assert agreement.verdict == "differs" and agreement.interval[0] > 1.5, str(agreement)


def test_interleaved_check_sees_extra_work_outside_the_model(monkeypatch):
    """Extra work that no forward count can see (here a busy wait of about half a call inside the timed call):
    only the timing sees it, and reads ~1.5x."""
    per_call = []

    def busy_wait(compiled, x):
        if not per_call:  # the length of one plain call, once, before the first timed call
            start = time.perf_counter()
            for _ in range(5):
                compiled(x)
            per_call.append((time.perf_counter() - start) / 5)
        end = time.perf_counter() + per_call[0] / 2
        while time.perf_counter() < end:
            pass

    _plant_in_the_timed_call(monkeypatch, busy_wait)
    agreement = harness_vs_reference(setting("convnext_atto", 64))
    assert set(agreement.forwards_per_block) == {CALLS_PER_BLOCK}  # invisible to the count
    assert agreement.verdict == "differs" and agreement.interval[0] > 1.2, str(agreement)


def test_gc_is_paused_inside_and_restored_after_even_on_error():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled() and gc.get_freeze_count() > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("call failed")
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_pause_leaves_what_the_process_froze_itself_frozen():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gc_paused():
            assert not gc.isenabled()
        assert gc.isenabled() and gc.get_freeze_count() >= frozen > 0
    finally:
        gc.unfreeze()


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
