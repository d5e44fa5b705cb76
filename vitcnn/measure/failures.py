"""Kinds of failure a setting can end in, and which of them leave the device unusable for every later setting."""

from __future__ import annotations

import re

# CUDA errors that are sticky: after one of them every later CUDA call in the process fails too, so the rest of
# the sweep would fail for a reason that belongs to this setting. Only these: an unsupported cuDNN shape
# (CUDNN_STATUS_NOT_SUPPORTED, "no execution plans") or "CUDA error: invalid argument" leaves the device usable, and
# stopping a whole sweep on one of them would lose every later setting; they are `error` results of their setting.
_FATAL_DEVICE_ERRORS = re.compile(
    r"illegal memory access|illegal instruction|misaligned address|unspecified launch failure"
    r"|device-side assert|CUDNN_STATUS_EXECUTION_FAILED|CUBLAS_STATUS_EXECUTION_FAILED",
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
    """A CUDA/cuDNN failure that poisons the CUDA context (illegal address or instruction, a failed kernel execution)."""
    if isinstance(exc, BaseException) and is_oom(exc):
        return False
    return bool(_FATAL_DEVICE_ERRORS.search(str(exc)))
