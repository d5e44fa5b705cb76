"""Kinds of failure a setting can end in, and which of them leave the device unusable for every later setting."""

from __future__ import annotations

import re

# CUDA errors that are sticky: after one of them every later CUDA call in the process fails too, so the rest of
# the sweep would fail for a reason that belongs to this setting.
_FATAL_DEVICE_ERRORS = re.compile(
    r"illegal memory access|illegal instruction|misaligned address|unspecified launch failure"
    r"|device-side assert|CUDA error|CUDNN_STATUS_|cuDNN error|cudnn.*(?:failed|error)|CUBLAS_STATUS_EXECUTION_FAILED",
    re.IGNORECASE,
)


class CompiledMismatch(RuntimeError):
    """The compiled model's output is not finite or not close to the reference: its timing would mean nothing."""


def is_oom(exc: BaseException) -> bool:
    """CUDA OOM, or the CPU allocator refusing (which torch reports as a plain RuntimeError)."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text.lower() or "can't allocate memory" in text or "not enough memory" in text
    )


def is_fatal_device_error(exc: BaseException | str) -> bool:
    """A CUDA/cuDNN failure that poisons the CUDA context (illegal address, cuDNN failure, a `CUDA error: ...`)."""
    if isinstance(exc, BaseException) and is_oom(exc):
        return False
    return bool(_FATAL_DEVICE_ERRORS.search(str(exc)))
