"""Which failures are OOM results, and which sticky CUDA errors poison every later setting."""

from __future__ import annotations

import pytest
import torch

from vitcnn.measure.failures import is_fatal_device_error, is_oom


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
