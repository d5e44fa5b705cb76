"""Measurement correctness: FLOPs include attention, OOM is a result, compiled output is checked, timing is honest."""

from __future__ import annotations

import re
import statistics
from dataclasses import replace

import pytest
import torch

from tests.factories import setting
from vitcnn.measure import flops, pipeline
from vitcnn.measure.pipeline import MeasureOptions
from vitcnn.zoo import models

QUICK = MeasureOptions(target_seconds=0.05, min_rounds=3, max_rounds=20, warmup_calls=2, warmup_seconds=0.0)


class _RaisesOOM(torch.nn.Module):
    def forward(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 TiB (simulated)")


def test_oom_is_a_result_and_the_next_setting_runs():
    oom_setting = setting("convnext_atto", 64, compile_mode="eager")
    ok_setting = setting("nfnet_tiny", 64, compile_mode="eager")

    def build(name, img_size):
        return _RaisesOOM() if name == "convnext_atto" else models.build(name, img_size)

    first = pipeline.measure(oom_setting, "cpu", options=QUICK, build=build)
    second = pipeline.measure(ok_setting, "cpu", options=QUICK, build=build)
    assert first.status == "oom" and "simulated" in first.reason and not first.samples
    assert second.status == "ok" and second.info["median_s"] > 0


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
    outcome = pipeline.measure(setting("convnext_atto", 64, compile_mode="default"), "cpu", options=QUICK,
                              build=lambda name, size: _WrongWhenCompiled().eval())
    assert outcome.status == "error"
    assert "differs from eager" in outcome.reason and "tolerance" in outcome.reason


class _NonFiniteWhenCompiled(_WrongWhenCompiled):
    """Finite in eager; its compiled graph puts a NaN in the output (as an overflow in a fused kernel would)."""

    def forward(self, x):
        y = self.linear(x.mean(dim=(2, 3)).repeat(1, 4))
        if torch.compiler.is_compiling():
            y = y + torch.where(torch.arange(4) == 2, torch.nan, 0.0)
        return y


def test_a_non_finite_compiled_output_is_an_error_result_not_a_timing():
    outcome = pipeline.measure(setting("convnext_atto", 64, compile_mode="default"), "cpu", options=QUICK,
                               build=lambda name, size: _NonFiniteWhenCompiled().eval())
    assert outcome.status == "error" and not outcome.samples
    assert "differs from eager: max relative error inf" in outcome.reason


def test_incomplete_flop_count_keeps_the_timing_but_derives_nothing_from_it(monkeypatch):
    monkeypatch.setattr(flops, "count_flops", lambda model, x: flops.FlopCount(
        1000, 0, {}, "attention op(s) ran with no FLOP formula: aten.x"))
    outcome = pipeline.measure(setting("vit_t16", 64), "cpu", options=QUICK)
    assert outcome.status == "ok" and outcome.info["median_s"] > 0
    assert "no FLOP formula" in outcome.info["flops_error"]
    assert outcome.info["tflops_per_s"] is None and outcome.info["mfu_matmul"] is None


def test_failed_flop_count_keeps_the_timing(monkeypatch):
    def broken(model, x):
        raise RuntimeError("counter exploded")

    monkeypatch.setattr(flops, "count_flops", broken)
    outcome = pipeline.measure(setting("nfnet_tiny", 64), "cpu", options=QUICK)
    assert outcome.status == "ok" and outcome.info["median_s"] > 0
    assert outcome.info["flops"] is None and "counter exploded" in outcome.info["flops_error"]
    assert outcome.info["tflops_per_s"] is None


def test_failed_matmul_peak_keeps_the_timing(monkeypatch):
    def broken(device, precision):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated, matmul peak)")

    monkeypatch.setattr(pipeline.peaks, "measured_matmul_tflops", broken)
    outcome = pipeline.measure(setting("nfnet_tiny", 64), "cpu", options=QUICK)
    assert outcome.status == "ok" and outcome.info["median_s"] > 0 and outcome.info["tflops_per_s"] > 0
    assert outcome.info["mfu_matmul"] is None and "simulated" in outcome.info["peak_tflops_matmul_error"]


def test_outcome_fields_for_a_compiled_vit():
    outcome = pipeline.measure(setting("vit_t16", 64, compile_mode="default"), "cpu", options=QUICK)
    info = outcome.info
    assert outcome.status == "ok", outcome.reason
    assert info["compile_time_s"] > 0 and info["compile_cache"] in ("hit", "miss", "partial")
    assert set(info["compile_cache_counters"]) <= {f"{c}.{n}" for c, (_, names) in pipeline.compiling.CACHE_COUNTERS.items()
                                                   for n in names}
    assert 0 <= info["check_max_rel_err"] <= info["check_tolerance"]
    assert 0 <= info["check_fp32_math_rel_err"] <= info["check_fp32_math_tolerance"]
    assert info["sdpa_backend_used"] == "flash_cpu" and info["sdpa_backend_source"] == "timed model"
    assert info["flops"] > info["attention_flops"] > 0 and info["flops_error"] is None
    assert info["cuda_graphs"] is False and info["gpu_time_s"] is None and info["gpu_busy"] is None
    assert info["conventions"] == "strict" and info["flops_convention"] == "all ops"
    assert info["precision_flags"]["float32_matmul_precision"] == "highest"
    assert info["precision_flags"]["cudnn_allow_tf32"] is False
    assert info["images_per_s"] == pytest.approx(1 / statistics.median(outcome.samples))
    assert info["peak_tflops_matmul"] > 0 and 0 < info["mfu_matmul"]


def test_precision_flags_are_restored_after_a_setting():
    before = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
    pipeline.measure(setting("nfnet_tiny", 64), "cpu", options=QUICK)
    assert (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32) == before


class _BrokenFusedKernel(torch.nn.Module):
    """Attention whose fused path is wrong (x1.5) while the math path is right: agrees with itself, not with math."""

    def forward(self, x):
        q = x.flatten(2).transpose(1, 2).unsqueeze(1)  # (B, 1, H*W, 3)
        out = torch.nn.functional.scaled_dot_product_attention(q, q, q).mean(dim=(1, 2))
        return out * 1.5 if torch.backends.cuda.flash_sdp_enabled() else out


def test_a_wrong_fused_kernel_is_caught_by_the_fp32_math_reference():
    outcome = pipeline.measure(setting("vit_t16", 64, compile_mode="eager"), "cpu", options=QUICK,
                              build=lambda name, size: _BrokenFusedKernel().eval())
    assert outcome.status == "error" and "fp32 math-attention reference" in outcome.reason


class _EagerOnlyOOM(torch.nn.Module):
    """Runs compiled at any batch, but eager (real tensors) only at batch 1: math attention at 1024 px, bs 32."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.batches = []

    def forward(self, x):
        from torch._subclasses.fake_tensor import FakeTensor

        if not torch.compiler.is_compiling() and not isinstance(x, FakeTensor):
            self.batches.append(x.shape[0])
            if x.shape[0] > 1:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated eager-only OOM)")
        return self.conv(x).mean(dim=(2, 3))


def test_eager_work_runs_on_a_slice_so_an_eager_only_oom_is_never_the_result():
    model = _EagerOnlyOOM()
    outcome = pipeline.measure(setting("convnext_atto", 64, batch=4, compile_mode="default"), "cpu", options=QUICK,
                              build=lambda name, size: model.eval())
    assert outcome.status == "ok", outcome.reason
    assert outcome.info["flops"] > 0 and set(model.batches) == {1}


def test_warm_up_is_not_cut_short_by_max_rounds_and_gc_is_restored():
    # target_seconds so long that max_rounds always decides the timed rounds, whatever this machine's speed
    options = MeasureOptions(target_seconds=100.0, min_rounds=2, max_rounds=3, warmup_calls=2, warmup_seconds=0.3)
    outcome = pipeline.measure(setting("nfnet_tiny", 64), "cpu", options=options)
    assert outcome.status == "ok" and outcome.info["warmup_rounds"] > options.max_rounds
    assert len(outcome.samples) == 3
    import gc
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_essay_conventions_leave_cudnn_tf32_on_and_drop_attention_flops():
    strict = pipeline.measure(setting("vit_t16", 64), "cpu", options=QUICK).info
    essay = pipeline.measure(setting("vit_t16", 64), "cpu", options=replace(QUICK, conventions="essay")).info
    assert strict["precision_flags"]["cudnn_allow_tf32"] is False
    assert essay["precision_flags"]["cudnn_allow_tf32"] is True
    assert essay["precision_flags"]["float32_matmul_precision"] == "highest"
    assert essay["flops"] == strict["flops"] - strict["attention_flops"] and essay["attention_flops"] > 0
    assert essay["conventions"] == "essay" and essay["flops_convention"].startswith("essay")


def test_a_sticky_cuda_error_is_marked_fatal_and_an_ordinary_error_is_not():
    def failing(message):
        class Failing(torch.nn.Module):
            def forward(self, x):
                raise RuntimeError(message)
        return lambda name, size: Failing().eval()

    sticky = pipeline.measure(setting("convnext_atto", 64), "cpu", options=QUICK,
                             build=failing("CUDA error: an illegal memory access was encountered"))
    plain = pipeline.measure(setting("convnext_atto", 64), "cpu", options=QUICK, build=failing("kernel exploded"))
    assert sticky.status == plain.status == "error"
    assert sticky.fatal and "illegal memory access" in sticky.reason and not plain.fatal


# ----------------------------------------------------------------------------------------------------- training


def test_a_compiled_training_step_end_to_end_on_cpu():
    s = setting("vit_t16", 64, batch=2, compile_mode="default", task="train")
    outcome = pipeline.measure(s, "cpu", options=QUICK)
    info = outcome.info
    assert outcome.status == "ok", outcome.reason
    assert info["setting_id"].endswith("-train") and info["inference_mode"] is False
    assert info["compile_time_s"] > 0 and info["check_max_rel_err"] <= info["check_tolerance"]
    assert info["check_fp32_math_rel_err"] <= info["check_fp32_math_tolerance"]
    assert 2.5 <= info["flops"] / info["forward_flops"] <= 3.5 and info["flops_error"] is None
    assert info["sdpa_backend_used"] == "flash_cpu"
    assert info["optimizer"] == "AdamW (fused)"
    assert info["gradient_bytes"] == 4 * info["params"]
    assert info["optimizer_state_bytes"] >= 2 * info["gradient_bytes"]
    # the step's peak beyond weights and optimizer state includes every gradient (all exist at the end of backward)
    assert info["activation_peak_bytes"] > info["gradient_bytes"]
    held = info["weights_bytes"] + info["optimizer_state_bytes"]
    assert info["total_peak_bytes"] >= held + info["activation_peak_bytes"]
    assert info["images_per_s"] == pytest.approx(2 / statistics.median(outcome.samples))


class _WrongGradientWhenCompiled(torch.nn.Module):
    """Same loss compiled and eager, but the compiled backward scales the gradient: only the gradient check sees it."""

    num_classes = 4

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(3))  # first parameter: the one whose gradient is checked
        self.linear = torch.nn.Linear(3, 4)

    def forward(self, x):
        features = x.mean(dim=(2, 3)) * self.scale
        if torch.compiler.is_compiling():
            features = features * 1.5 - features.detach() * 0.5  # same value, 1.5x the gradient
        return self.linear(features)


def test_a_compiled_step_with_a_wrong_gradient_fails_the_check():
    outcome = pipeline.measure(setting("convnext_atto", 64, batch=2, compile_mode="default", task="train"), "cpu",
                              options=QUICK, build=lambda name, size: _WrongGradientWhenCompiled())
    assert outcome.status == "error" and "differs from eager" in outcome.reason


def test_cpu_memory_is_measured_and_autograd_left_on_is_visible():
    s = setting("convnext_atto", 128, batch=2)
    normal = pipeline.measure(s, "cpu", options=QUICK).info
    planted = pipeline.measure(s, "cpu", options=replace(QUICK, inference_mode=False)).info
    assert normal["activation_peak_bytes"] > 0 and normal["memory_source"].startswith("profiler")
    assert normal["total_peak_bytes"] == normal["weights_bytes"] + 2 * 3 * 128 * 128 * 4 + normal["activation_peak_bytes"]
    assert planted["activation_peak_bytes"] > 1.5 * normal["activation_peak_bytes"]
    again = pipeline.measure(s, "cpu", options=QUICK).info
    assert again["activation_peak_bytes"] == normal["activation_peak_bytes"]  # deterministic: gateable


# ------------------------------------------------------------------------------ GPU only: pytest -m gpu


def gpu(test):
    """Marked `gpu` (select with `-m gpu`) and skipped without CUDA."""
    return pytest.mark.gpu(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")(test))


def check_spec_mfu(device_name: str, info: dict) -> None:
    """The datasheet lookup's outcome, either way: a GPU in the peaks table (or a MIG slice of one) has a spec peak
    no higher than the full GPU's and an MFU in (0, 1); any other GPU has neither (never a neighbour's peak)."""
    full_gpu = re.sub(r" MIG \d+g\.\d+gb(\+\w+)?$", "", device_name.strip())
    if full_gpu in pipeline.peaks.SPEC_TFLOPS:
        full_peak = pipeline.peaks.SPEC_TFLOPS[full_gpu][0][info["setting"]["precision"]]
        assert info["peak_tflops_spec"] is not None and 0 < info["peak_tflops_spec"] <= full_peak, (device_name, info)
        assert info["mfu_spec"] is not None and 0 < info["mfu_spec"] < 1, (device_name, info)
        assert info["mfu_spec"] == pytest.approx(info["tflops_per_s"] / info["peak_tflops_spec"])
    else:
        assert info["peak_tflops_spec"] is None and info["mfu_spec"] is None, (device_name, info)


@pytest.mark.parametrize("device_name, info, passes", [
    ("NVIDIA H200", {"peak_tflops_spec": 989.4, "mfu_spec": 0.2, "tflops_per_s": 197.88}, True),
    ("NVIDIA H100 80GB HBM3 MIG 3g.40gb", {"peak_tflops_spec": 449.7, "mfu_spec": 0.2, "tflops_per_s": 89.94}, True),
    ("NVIDIA GeForce RTX 4090", {"peak_tflops_spec": None, "mfu_spec": None, "tflops_per_s": 100.0}, True),
    ("NVIDIA H200", {"peak_tflops_spec": None, "mfu_spec": None, "tflops_per_s": 100.0}, False),  # lookup missed
    ("NVIDIA H200", {"peak_tflops_spec": 989.4, "mfu_spec": 1.3, "tflops_per_s": 1286.2}, False),  # MFU > 100%
    ("NVIDIA GeForce RTX 4090", {"peak_tflops_spec": 989.4, "mfu_spec": 0.1, "tflops_per_s": 98.94}, False),
])
def test_the_gpu_tests_spec_mfu_check_fails_either_way(device_name, info, passes):
    """check_spec_mfu (used on the GPU below) is checked here on CPU, both branches: it cannot pass vacuously."""
    info = {**info, "setting": {"precision": "bf16"}}
    if passes:
        check_spec_mfu(device_name, info)
    else:
        with pytest.raises(AssertionError):
            check_spec_mfu(device_name, info)


@gpu
@pytest.mark.parametrize("sdpa, expected", [("flash", {"flash"}), ("auto", {"flash", "cudnn", "efficient"})])
def test_gpu_bf16_vit_reaches_a_fused_kernel_and_reports_memory(sdpa, expected):
    outcome = pipeline.measure(setting("vit_t16", 224, precision="bf16", sdpa=sdpa, compile_mode="default"), "cuda")
    info = outcome.info
    assert outcome.status == "ok", outcome.reason
    assert info["sdpa_backend_used"] in expected
    assert info["activation_peak_bytes"] > 0 and info["reserved_peak_bytes"] >= info["weights_bytes"]
    check_spec_mfu(torch.cuda.get_device_name(), info)
    assert 0 < info["gpu_time_s"] <= info["median_s"] * 1.05 and 0 < info["gpu_busy"] <= 1.05


@gpu
@pytest.mark.parametrize("mode", ["reduce-overhead", "max-autotune"])
def test_gpu_cuda_graph_modes_probe_eager_and_count_the_recording(mode):
    outcome = pipeline.measure(setting("vit_t16", 224, batch=8, precision="bf16", sdpa="flash", compile_mode=mode), "cuda")
    assert outcome.status == "ok", outcome.reason
    info = outcome.info
    assert info["cuda_graphs"] and info["sdpa_backend_source"] == "eager" and info["sdpa_backend_used"] == "flash"
    assert info["warmup_rounds"] >= 3
    assert info["activation_peak_bytes"] > 8 * 197 * 192 * 2  # at least one activation tensor, not ~0


@gpu
def test_gpu_batch_1_default_is_visibly_launch_bound():
    outcome = pipeline.measure(setting("vit_t16", 64, precision="bf16", compile_mode="default"), "cuda")
    assert outcome.status == "ok", outcome.reason
    assert outcome.info["gpu_busy"] < 0.5  # a tiny model at batch 1: the GPU waits on kernel launches


@gpu
def test_gpu_math_setting_runs_math_after_auto_in_a_fresh_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    for backend, expected in [("auto", {"flash", "cudnn", "efficient"}), ("math", {"math"}), ("cudnn", {"cudnn"})]:
        outcome = pipeline.measure(setting("vit_t16", 224, precision="bf16", sdpa=backend, compile_mode="default"), "cuda")
        assert outcome.status == "ok", outcome.reason
        assert outcome.info["sdpa_backend_used"] in expected


@gpu
def test_gpu_autograd_on_is_a_memory_regression():
    s = setting("convnext_atto", 224, batch=16, compile_mode="eager")
    with_inference = pipeline.measure(s, "cuda").info["activation_peak_bytes"]
    with_autograd = pipeline.measure(s, "cuda", options=MeasureOptions(inference_mode=False)).info["activation_peak_bytes"]
    assert with_autograd > 1.5 * with_inference


@gpu
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_gpu_training_step_in_half_precision(precision):
    s = setting("vit_t16", 224, batch=8, precision=precision, compile_mode="default", task="train")
    outcome = pipeline.measure(s, "cuda")
    info = outcome.info
    assert outcome.status == "ok", outcome.reason
    assert info["optimizer"] == "AdamW (fused)" and info["sdpa_backend_used"] in {"flash", "cudnn", "efficient"}
    held = info["weights_bytes"] + info["optimizer_state_bytes"]
    assert info["activation_peak_bytes"] > info["gradient_bytes"] and info["total_peak_bytes"] >= held + info["gradient_bytes"]


@gpu
def test_gpu_harness_agrees_with_a_cuda_graph_reference():
    """Synchronised per-call timing vs triton's CUDA-graph benchmark of the same compiled model (no launch gaps)."""
    try:  # a GPU machine without triton cannot compile for CUDA at all: fail, never skip
        import triton.testing as triton_testing
    except ImportError as exc:
        pytest.fail(f"triton is needed on a CUDA machine (torch.compile's GPU backend and this reference): {exc}")
    captured = {}

    def build(name, img_size):
        captured["model"] = models.build(name, img_size)
        return captured["model"]

    s = setting("vit_b16", 512, batch=8, precision="bf16", compile_mode="default")
    outcome = pipeline.measure(s, "cuda", build=build)
    assert outcome.status == "ok", outcome.reason
    model = captured["model"]  # cast and moved in place by the harness
    x = torch.randn(8, 3, 512, 512, device="cuda", dtype=torch.bfloat16)
    with torch.inference_mode():
        compiled = torch.compile(model, dynamic=False)
        compiled(x)
        reference_ms = triton_testing.do_bench_cudagraph(lambda: compiled(x), rep=500)
    assert outcome.info["median_s"] * 1e3 == pytest.approx(reference_ms, rel=0.05)


def test_measure_is_the_composition_of_the_stages_vitcnn_ab_uses():
    """prepare -> time blocks -> finish gives the same fields as measure(): vitcnn ab has no second harness."""
    s = setting("vit_t16", 64)
    whole = pipeline.measure(s, "cpu", options=QUICK)
    prepared = pipeline.prepare(s, "cpu", QUICK)
    try:
        calls = []
        original = prepared.call
        prepared.call = lambda: (calls.append(1), original())[1]
        block = prepared.time_block(4)  # one untimed call refills caches first
        assert len(block) == 4 and len(calls) == 5 and prepared.samples == block
        prepared.time_block(3, untimed=0)
        assert len(prepared.samples) == 7 and len(calls) == 8
        info = prepared.finish()
    finally:
        prepared.close()
    pipeline.free_memory()
    staged = pipeline.completed(s, torch.device("cpu"), info, prepared.samples)
    assert staged.status == whole.status == "ok"
    assert set(staged.info) == set(whole.info)
    assert staged.info["flops"] == whole.info["flops"]
    assert staged.info["sdpa_backend_used"] == whole.info["sdpa_backend_used"]
