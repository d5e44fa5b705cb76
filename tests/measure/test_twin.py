"""The eager twin: its statistic, its block order, its memory peak, and a pipeline run where the twin must see a
compiled call planted to be twice as slow as eager."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from tests.factories import setting
from tests.measure.test_pipeline import gpu
from vitcnn.measure import compiling, pipeline, twin
from vitcnn.measure.options import MeasureOptions, for_profile

QUICK = MeasureOptions(target_seconds=0.1, warmup_seconds=0.1, min_rounds=5, compile_times=False,
                       eager_twin=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-2, 2, allow_nan=False), min_size=2, max_size=30))
def test_the_speedup_is_the_geometric_mean_inside_its_t_interval(logs):
    result = twin.speedup(logs)
    assert result.pairs == len(logs)
    assert result.ratio == pytest.approx(math.exp(np.mean(logs)))
    assert result.ci_low <= result.ratio * (1 + 1e-9) and result.ratio <= result.ci_high * (1 + 1e-9)
    if np.std(logs) > 1e-6:
        low, high = stats.t.interval(0.95, len(logs) - 1, loc=np.mean(logs), scale=stats.sem(logs))
        assert (math.log(result.ci_low), math.log(result.ci_high)) == pytest.approx((low, high), abs=1e-9)


def test_constant_pairs_give_a_point_one_pair_is_unbounded_none_is_an_error():
    point = twin.speedup([math.log(1.5)] * 4)
    assert (point.ratio, point.ci_low, point.ci_high) == pytest.approx((1.5, 1.5, 1.5))
    one = twin.speedup([0.2])
    assert (one.ci_low, one.ci_high) == (0.0, math.inf)
    with pytest.raises(ValueError, match="no pairs"):
        twin.speedup([])


def test_blocks_are_sized_to_the_time_budget_with_at_least_one_call():
    assert twin.block_calls(0.001, 0.001, pairs=10, seconds=2.0) == 100
    assert twin.block_calls(1.0, 2.0, pairs=10, seconds=2.0) == 1
    assert twin.block_calls(0.0, 0.0) >= 1


def test_pairs_alternate_which_side_goes_first_and_refill_before_each_block():
    calls: list[str] = []
    logs, eager_medians = twin.time_pairs(lambda: calls.append("C"), lambda: calls.append("E"), pairs=4, calls=2)
    per_pair = 2 * (1 + 2)  # each block: one untimed call, then `calls` timed ones
    blocks = ["".join(calls[i:i + 3]) for i in range(0, len(calls), 3)]
    assert len(calls) == 4 * per_pair and blocks == ["CCC", "EEE", "EEE", "CCC", "CCC", "EEE", "EEE", "CCC"]
    assert len(logs) == len(eager_medians) == 4


def test_a_side_twice_as_slow_reads_as_a_speedup_of_two():
    def sleeper(seconds):
        return lambda: time.sleep(seconds)

    logs, _ = twin.time_pairs(sleeper(0.002), sleeper(0.004), pairs=6, calls=3)
    result = twin.speedup(logs)
    assert 1.6 < result.ratio < 2.4 and result.ci_low > 1.3  # sleep's overhead shrinks the ratio a little


def test_the_eager_peak_counts_what_a_call_allocates_on_top_of_what_is_held():
    held = torch.ones(1 << 20)
    nbytes = 4 << 20

    def call():
        (held + 1).sum()  # one temporary of held's size, 4 MiB

    assert nbytes <= twin.activation_peak(call, torch.device("cpu")) < 2 * nbytes


class TwiceAsSlow(torch.nn.Module):
    """A 'compiled' model that runs the model twice: the negative control the twin must see."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        self.model(x)
        return self.model(x)


def test_a_compiled_call_planted_twice_as_slow_reads_as_half_the_speed_of_eager(monkeypatch):
    monkeypatch.setattr(compiling, "compile_model", lambda model, mode: model if mode == "eager" else TwiceAsSlow(model))
    outcome = pipeline.measure(setting("convnext_atto", compile_mode="default"), "cpu", options=QUICK)
    assert outcome.status == "ok", outcome.reason
    info = outcome.info
    assert 0.35 < info["speedup_vs_eager"] < 0.7 and info["speedup_ci_high"] < 0.8
    assert len(info["speedup_log_ratios"]) == twin.PAIRS and info["eager_twin_median_s"] < info["median_s"]
    assert info["eager_activation_peak_bytes"] > 0
    assert info["memory_compression"] == pytest.approx(info["eager_activation_peak_bytes"]
                                                       / info["activation_peak_bytes"])
    assert info["compile_cold_s"] is None  # compile_times off


def test_eager_settings_have_no_twin_fields():
    eager = pipeline.measure(setting("convnext_atto"), "cpu", options=QUICK)
    assert eager.status == "ok" and all(eager.info[k] is None for k in twin.FIELDS)


def test_profiles_decide_unless_the_options_say_so():
    on = for_profile(MeasureOptions(), "smoke")
    off = for_profile(MeasureOptions(), "blog")
    forced = for_profile(MeasureOptions(compile_times=False, eager_twin=False), "smoke")
    assert (on.compile_times, on.eager_twin, off.compile_times, off.eager_twin) == (True, True, False, False)
    assert (forced.compile_times, forced.eager_twin) == (False, False)
    assert for_profile(MeasureOptions(), "essay").conventions == "essay"


def test_an_unbounded_interval_is_written_as_none_never_as_infinity_or_zero():
    fields = twin.measure_twin(lambda: None, lambda: None, 1e-6, None, torch.device("cpu"), pairs=1, seconds=0.001)
    assert fields["speedup_ci_low"] is None and fields["speedup_ci_high"] is None
    assert len(fields["speedup_log_ratios"]) == 1 and fields["memory_compression"] is None
    assert set(fields) == set(twin.FIELDS)


# ------------------------------------------------------------------------------ GPU only: pytest -m gpu


@gpu
@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_gpu_cold_warm_compile_and_the_eager_twin(mode):
    # CUDA paths never run on CPU: the cold compile's Triton cache in a fresh dir, a Dynamo reset between CUDA-graph
    # recordings, the twin's blocks between graph replays, the eager peak from the allocator's counters.
    options = MeasureOptions(target_seconds=0.2, warmup_seconds=0.2, compile_times=True, eager_twin=True)
    s = setting("vit_t16", resolution=64, batch=2, precision="bf16", compile_mode=mode)
    outcome = pipeline.measure(s, "cuda", options=options)
    assert outcome.status == "ok", outcome.reason
    info = outcome.info
    assert (info["compile_cold_cache"], info["compile_warm_cache"]) == ("miss", "hit")
    assert info["compile_cold_s"] > info["compile_warm_s"] > 0
    assert info["speedup_ci_low"] <= info["speedup_vs_eager"] <= info["speedup_ci_high"]
    assert info["eager_activation_peak_bytes"] > 0 and info["memory_compression"] > 0
    assert info["cuda_graphs"] == (mode == "reduce-overhead") and info["recompiles"] == 0
