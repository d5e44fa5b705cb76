"""Which failures are OOM results, and which sticky CUDA errors poison every later setting."""

from __future__ import annotations

import pytest
import torch

from vitcnn.measure.failures import is_fatal_device_error, is_oom, known_upstream


@pytest.mark.parametrize("message", [
    "CUDA error: an illegal memory access was encountered",
    "CUDA error: misaligned address",
    "cuDNN error: CUDNN_STATUS_EXECUTION_FAILED",
    "CUDA error: device-side assert triggered",
    "CUDA error: unspecified launch failure",
    "CUDA error: an illegal instruction was encountered",
])
def test_sticky_cuda_errors_are_fatal(message):
    assert is_fatal_device_error(RuntimeError(message))


@pytest.mark.parametrize("message", [
    "cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. This error may appear if you passed in a non-contiguous input.",
    "cuDNN Frontend error: [cudnn_frontend] Error: No execution plans support the graph.",
    "CUDA error: invalid argument",
    "CUBLAS_STATUS_NOT_SUPPORTED when calling cublasGemmEx",
])
def test_errors_that_leave_the_device_usable_are_results_not_the_end_of_the_sweep(message):
    assert not is_fatal_device_error(RuntimeError(message))


def test_ordinary_errors_and_oom_are_not_fatal():
    assert not is_fatal_device_error(RuntimeError("shape mismatch: mat1 and mat2"))
    assert not is_fatal_device_error(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert not is_fatal_device_error(RuntimeError("CUDA error: out of memory"))  # an OOM result, not a poison


def test_cpu_allocator_failure_counts_as_oom():
    assert is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 TB"))
    assert not is_oom(RuntimeError("shape mismatch"))


TORCH_211_ERROR = "UnboundLocalError: cannot access local variable 'buf7' where it is not associated with a value"


def test_a_known_upstream_failure_is_named_on_the_releases_it_was_seen_on_only():
    setting_id = "convnext_atto-64px-bs2-fp32-nchw-default-train"
    assert "torch 2.11.0" in known_upstream(setting_id, TORCH_211_ERROR, "2.11.0+cpu")
    assert known_upstream(setting_id, TORCH_211_ERROR, "2.14.1+cu130") is None  # fixed there: a vitcnn bug then
    assert known_upstream("convnext_atto-64px-bs2-fp32-nchw-eager-train", TORCH_211_ERROR, "2.11.0") is None
    assert known_upstream("convnext_atto-64px-bs2-fp32-nchw-default", TORCH_211_ERROR, "2.11.0") is None
    assert known_upstream(setting_id, "RuntimeError: shapes do not match", "2.11.0") is None


def test_a_failing_setting_keeps_status_error_and_its_reason_names_the_known_bug(monkeypatch):
    from tests.factories import setting
    from vitcnn.measure import pipeline

    monkeypatch.setattr(torch, "__version__", "2.11.0+cpu")
    s = setting("convnext_atto", 64, batch=2, compile_mode="default", task="train")
    outcome = pipeline.failure(UnboundLocalError(TORCH_211_ERROR.split(": ", 1)[1]), s)
    assert outcome.status == "error" and not outcome.fatal and "torch 2.11.0" in outcome.upstream
    assert outcome.reason.startswith(TORCH_211_ERROR) and "[known upstream failure: inductor's" in outcome.reason
    assert "known upstream" not in pipeline.failure(RuntimeError("shape mismatch"), s).reason
