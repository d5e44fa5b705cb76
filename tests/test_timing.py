"""plain_timer times each call separately; synchronize is a no-op on CPU; the harness's timing is the true call
time, checked against torch.utils.benchmark interleaved in one process (separate runs on a shared CPU differ by up
to ~1.8x, so a comparison of two separate runs would test the machine, not the harness)."""

from __future__ import annotations

import statistics
import time

import pytest
import torch
import torch.utils.benchmark as torch_benchmark

from tests.factories import setting
from vitcnn import measure, models
from vitcnn.measure import MeasureOptions
from vitcnn.timing import plain_timer, synchronize

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

    outcome = measure.measure(s, "cpu", timer=interleaved_timer, options=MeasureOptions(warmup_seconds=0.3),
                              build=build)
    assert outcome.status == "ok", outcome.reason
    return statistics.median(ratios), outcome.info["median_s"] / statistics.median(reference)


def test_harness_timing_agrees_with_torch_utils_benchmark_interleaved():
    block_ratio, reported_ratio = harness_vs_reference(setting("convnext_atto", 64))
    assert block_ratio == pytest.approx(1, abs=0.10)
    assert reported_ratio == pytest.approx(1, abs=0.15)


def test_interleaved_check_sees_a_harness_that_times_extra_work(monkeypatch):
    """The check above can fail: a harness whose timed call also runs the model a second time reads ~2x."""
    real_synchronize = measure.synchronize
    captured_calls = []

    def synchronize_after_a_second_call(device):
        if captured_calls:
            captured_calls[-1]()
        real_synchronize(device)

    original_compile = measure._compile

    def compile_and_capture(model, mode):
        compiled = original_compile(model, mode)
        x = torch.randn(1, 3, 64, 64)
        captured_calls.append(lambda: compiled(x))
        return compiled

    monkeypatch.setattr(measure, "_compile", compile_and_capture)
    monkeypatch.setattr(measure, "synchronize", synchronize_after_a_second_call)
    block_ratio, _ = harness_vs_reference(setting("convnext_atto", 64))
    assert block_ratio > 1.5
