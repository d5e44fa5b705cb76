"""The run checklist: each symptom fires on a planted case, stays quiet on a sound one, and reads a real GPU run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import CPU_FINGERPRINT, GPU_FINGERPRINT, make_run, result, setting
from tests.report.helpers import ok
from vitcnn.report import sanity
from vitcnn.runfile import load_run
from vitcnn.table import MIB

H200 = Path(__file__).resolve().parents[2] / "results" / "nvidia-h200-torch2.11.0-73a409fd"
SOUND = {"sdpa_backend_used": "flash", "gpu_busy": 0.95, "flops": int(300e12 * 0.01), "peak_tflops_spec": 989.4,
         "activation_peak_bytes": 100 * MIB, "total_peak_bytes": 300 * MIB, "compile_cache": "miss",
         "compile_cold_cache": "miss", "compile_warm_cache": "hit"}


def checks(*results, fp=GPU_FINGERPRINT, cold=False) -> dict[str, list[str]]:
    found = sanity.findings(make_run(*results, fp=fp), cold=cold)
    out: dict[str, list[str]] = {}
    for finding in found:
        out.setdefault(finding.check, []).append(finding.detail)
    return out


def test_a_sound_gpu_result_raises_nothing():
    assert checks(ok("vit_b16", 224, 32, ms=10, **SOUND), cold=True) == {}


@pytest.mark.parametrize("extra, check, words", [
    ({"sdpa_backend_used": "math"}, "kernel", "requested 'flash', ran 'math'"),
    ({"sdpa_backend_used": "unknown"}, "kernel", "not identified"),
    ({"gpu_busy": 0.3}, "gpu_busy", "the host, not the GPU"),
    ({"gpu_busy": 1.3}, "gpu_busy", "a timer is wrong"),
    ({"flops": int(2000e12 * 0.01)}, "mfu", "FLOPs overcounted"),
    ({"flops": int(1e12 * 0.01)}, "mfu", "far below"),
    ({"activation_peak_bytes": 0}, "memory", "not seen"),
    ({"activation_peak_bytes": 300 * MIB}, "memory", "not counted apart"),
    ({"compile_cache": "hit"}, "compile_cache", "artifact of another run"),
    ({"compile_cold_cache": "hit", "compile_warm_cache": "hit"}, "compile_times", "should miss an empty cache"),
    ({"compile_cold_cache": "miss", "compile_warm_cache": "miss"}, "compile_times", "should hit what the cold"),
    ({"flops_error": "no formula for aten.foo"}, "derived", "flops_error: no formula"),
])
def test_each_symptom_is_named(extra, check, words):
    found = checks(ok("vit_b16", 224, 32, ms=10, **{**SOUND, **extra}), cold=True)
    assert list(found) == [check] and words in found[check][0]


def test_batch_one_may_be_launch_bound_and_a_warm_cache_is_fine_unless_cold():
    assert checks(ok("vit_b16", 224, 1, ms=10, **{**SOUND, "gpu_busy": 0.3, "flops": int(1e12 * 0.01)})) == {}
    assert checks(ok("vit_b16", 224, 32, ms=10, **{**SOUND, "compile_cache": "hit"}), cold=False) == {}


def test_auto_must_reach_a_fused_kernel_on_a_gpu_in_half_precision_but_not_on_a_cpu():
    math = {**SOUND, "sdpa_backend_used": "math"}
    s = setting("vit_b16", 224, 32, "bf16", sdpa="auto", compile_mode="default")
    assert "kernel" in checks(result(s, samples=[0.01] * 5, **math))
    assert checks(result(s, samples=[0.01] * 5, **{**math, "gpu_busy": None}), fp=CPU_FINGERPRINT) == {}


def test_calls_at_two_speeds_and_failed_settings_are_listed():
    two_speeds = result(setting("convnext_b", 1024, 1, "bf16", compile_mode="default", layout="channels_last"),
                        samples=[0.005] * 6 + [0.008] * 4)
    failed = result(setting("vit_b16", 1024, 32, "bf16", compile_mode="default"), status="oom", reason="CUDA OOM")
    found = checks(two_speeds, failed)
    assert "more than one speed" in found["spread"][0] and found["status"] == ["oom: CUDA OOM"]


def test_the_h200_first_contact_runs_show_one_setting_at_two_speeds():
    """The committed H200 runs: nothing wrong but ConvNeXt-B at 1024 px, batch 1, whose calls took ~4.9 or ~8.2 ms."""
    found = [f for path in sorted(H200.glob("first-contact-*/run-*.json"))
             for f in sanity.findings(load_run(path))]
    assert [(f.check, f.setting_id) for f in found] == [("spread", "convnext_b-1024px-bs1-bf16-channels_last-default")]
    text = sanity.render(load_run(H200 / "first-contact-1" / "run-a.json"), found)
    assert "3/3 settings ok on NVIDIA H200" in text and "[spread] convnext_b-1024px" in text


def test_graph_breaks_and_recompiles_are_named():
    found = checks(ok("vit_b16", 224, 32, ms=10, **SOUND, graph_breaks=2, recompiles=7,
                      graph_break_reasons=["Call to `torch._dynamo.graph_break()`"]))
    assert list(found) == ["dynamo"]
    assert "2 graph breaks (first: Call to `torch._dynamo.graph_break()`)" in found["dynamo"][0]
    assert "7 recompiles" in found["dynamo"][0]
