"""Measurement correctness: FLOPs include attention, OOM is a result, compiled output is checked, timing is honest."""

from __future__ import annotations

import statistics

import pytest
import torch

from vitcnn import measure, models
from vitcnn.measure import MeasureOptions, count_flops
from tests.factories import setting

QUICK = MeasureOptions(target_seconds=0.05, min_rounds=3, max_rounds=20, warmup_calls=2, warmup_seconds=0.0)


def test_vit_b16_flops_at_224_match_the_literature():
    total, attention = count_flops(models.build("vit_b16", 224), torch.randn(1, 3, 224, 224))
    assert total == pytest.approx(35.1e9, rel=0.02)  # 17.6 GMACs
    assert attention == pytest.approx(4 * 12 * 12 * 197**2 * 64, rel=1e-9)  # 2 matmuls x 2 FLOPs, 12 layers x 12 heads


def test_attention_flops_grow_quadratically_with_tokens():
    model = models.build("vit_t16", 64)
    small_total, small_attn = count_flops(model, torch.randn(1, 3, 64, 64))  # 16 tokens (+1 class token)
    big_total, big_attn = count_flops(models.build("vit_t16", 256), torch.randn(1, 3, 256, 256))  # 256 (+1)
    assert big_attn / small_attn == pytest.approx((257 / 17) ** 2, rel=1e-6)
    assert (big_total - big_attn) / (small_total - small_attn) == pytest.approx(257 / 17, rel=0.02)


def test_vitdet_counts_windowed_attention():
    _, global_attn = count_flops(models.build("vitdet_t16", 256, window_size=16), torch.randn(1, 3, 256, 256))
    _, windowed_attn = count_flops(models.build("vitdet_t16", 256, window_size=4), torch.randn(1, 3, 256, 256))
    # 8 of 12 blocks attend within 4x4 windows (16 tokens) instead of the 256-token grid.
    assert windowed_attn / global_attn == pytest.approx((4 + 8 * 16 / 256) / 12, rel=1e-6)


class _RaisesOOM(torch.nn.Module):
    def forward(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 TiB (simulated)")


def test_oom_is_a_result_and_the_next_setting_runs():
    oom_setting = setting("convnext_atto", 64, compile_mode="eager")
    ok_setting = setting("nfnet_tiny", 64, compile_mode="eager")

    def build(name, img_size):
        return _RaisesOOM() if name == "convnext_atto" else models.build(name, img_size)

    first = measure.measure(oom_setting, "cpu", options=QUICK, build=build)
    second = measure.measure(ok_setting, "cpu", options=QUICK, build=build)
    assert first.status == "oom" and "simulated" in first.reason and not first.samples
    assert second.status == "ok" and second.info["median_s"] > 0


def test_cpu_allocator_failure_counts_as_oom():
    assert measure.is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 TB"))
    assert not measure.is_oom(RuntimeError("shape mismatch"))


class _WrongWhenCompiled(torch.nn.Module):
    """A model whose compiled graph computes something else than eager: the check must catch it."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(12, 4)

    def forward(self, x):
        y = self.linear(x.mean(dim=(2, 3)).repeat(1, 4))
        if torch.compiler.is_compiling():
            y = y * 1.5
        return y


def test_compiled_output_differing_from_eager_fails_the_check():
    outcome = measure.measure(setting("convnext_atto", 64, compile_mode="default"), "cpu", options=QUICK,
                              build=lambda name, size: _WrongWhenCompiled().eval())
    assert outcome.status == "error"
    assert "differs from eager" in outcome.reason and "tolerance" in outcome.reason


def test_failed_flop_count_keeps_the_timing(monkeypatch):
    def broken(model, x):
        raise RuntimeError("counter exploded")

    monkeypatch.setattr(measure, "count_flops", broken)
    outcome = measure.measure(setting("nfnet_tiny", 64), "cpu", options=QUICK)
    assert outcome.status == "ok" and outcome.info["median_s"] > 0
    assert outcome.info["flops"] is None and "counter exploded" in outcome.info["flops_error"]
    assert outcome.info["tflops_per_s"] is None


def test_failed_matmul_peak_keeps_the_timing(monkeypatch):
    def broken(device, precision):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated, matmul peak)")

    monkeypatch.setattr(measure.peaks, "measured_matmul_tflops", broken)
    outcome = measure.measure(setting("nfnet_tiny", 64), "cpu", options=QUICK)
    assert outcome.status == "ok" and outcome.info["median_s"] > 0 and outcome.info["tflops_per_s"] > 0
    assert outcome.info["mfu_matmul"] is None and "simulated" in outcome.info["peak_tflops_matmul_error"]


def test_outcome_fields_for_a_compiled_vit():
    outcome = measure.measure(setting("vit_t16", 64, compile_mode="default"), "cpu", options=QUICK)
    info = outcome.info
    assert outcome.status == "ok", outcome.reason
    assert info["compile_time_s"] > 0 and info["compile_cache"] in ("hit", "miss")
    assert 0 <= info["check_max_rel_err"] <= info["check_tolerance"]
    assert info["sdpa_backend_used"] in ("flash_cpu", "math")
    assert info["precision_flags"]["float32_matmul_precision"] == "highest"
    assert info["precision_flags"]["cudnn_allow_tf32"] is False
    assert info["images_per_s"] == pytest.approx(1 / statistics.median(outcome.samples))
    assert info["peak_tflops_matmul"] > 0 and 0 < info["mfu_matmul"]


def test_precision_flags_are_restored_after_a_setting():
    before = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
    measure.measure(setting("nfnet_tiny", 64), "cpu", options=QUICK)
    assert (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32) == before


# ------------------------------------------------------------------------------ GPU only (skipped without CUDA)

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@gpu
@pytest.mark.parametrize("sdpa, expected", [("flash", {"flash"}), ("auto", {"flash", "cudnn", "efficient"})])
def test_gpu_bf16_vit_reaches_a_fused_kernel_and_reports_memory(sdpa, expected):
    outcome = measure.measure(setting("vit_t16", 224, precision="bf16", sdpa=sdpa, compile_mode="default"), "cuda")
    info = outcome.info
    assert outcome.status == "ok", outcome.reason
    assert info["sdpa_backend_used"] in expected
    assert info["activation_peak_bytes"] > 0 and info["reserved_peak_bytes"] >= info["weights_bytes"]
    name = torch.cuda.get_device_name()
    if any(key in name for key, _ in measure.peaks.SPEC_TFLOPS):
        assert 0 < info["mfu_spec"] < 1


@gpu
def test_gpu_reduce_overhead_reads_the_backend_from_eager():
    outcome = measure.measure(setting("vit_t16", 224, precision="bf16", compile_mode="reduce-overhead"), "cuda")
    assert outcome.status == "ok", outcome.reason
    assert outcome.info["sdpa_backend_source"] == "eager"


@gpu
def test_gpu_autograd_on_is_a_memory_regression():
    s = setting("convnext_atto", 224, batch=16, compile_mode="eager")
    with_inference = measure.measure(s, "cuda").info["activation_peak_bytes"]
    with_autograd = measure.measure(s, "cuda", options=MeasureOptions(inference_mode=False)).info["activation_peak_bytes"]
    assert with_autograd > 1.5 * with_inference


@gpu
def test_gpu_harness_agrees_with_a_cuda_graph_reference():
    """Synchronised per-call timing vs triton's CUDA-graph benchmark of the same compiled model (no launch gaps)."""
    triton_testing = pytest.importorskip("triton.testing")
    captured = {}

    def build(name, img_size):
        captured["model"] = models.build(name, img_size)
        return captured["model"]

    s = setting("vit_b16", 512, batch=8, precision="bf16", compile_mode="default")
    outcome = measure.measure(s, "cuda", build=build)
    assert outcome.status == "ok", outcome.reason
    model = captured["model"]  # cast and moved in place by the harness
    x = torch.randn(8, 3, 512, 512, device="cuda", dtype=torch.bfloat16)
    with torch.inference_mode():
        compiled = torch.compile(model, dynamic=False)
        compiled(x)
        reference_ms = triton_testing.do_bench_cudagraph(lambda: compiled(x), rep=500)
    assert outcome.info["median_s"] * 1e3 == pytest.approx(reference_ms, rel=0.05)
