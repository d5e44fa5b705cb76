"""Kinds of failure a setting can end in, and which of them leave the device unusable for every later setting."""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass

from vitcnn.result import Result
from vitcnn.settings import Setting

# CUDA errors that are sticky: after one of them every later CUDA call in the process fails too, so the rest of
# the sweep would fail for a reason that belongs to this setting. Only these: an unsupported cuDNN shape
# (CUDNN_STATUS_NOT_SUPPORTED, "no execution plans") or "CUDA error: invalid argument" leaves the device usable, and
# stopping a whole sweep on one of them would lose every later setting; they are `error` results of their setting.
_FATAL_DEVICE_ERRORS = re.compile(
    r"illegal memory access|illegal instruction|misaligned address|unspecified launch failure"
    r"|device-side assert|CUDNN_STATUS_EXECUTION_FAILED|CUBLAS_STATUS_EXECUTION_FAILED",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class UpstreamFailure:
    """A failure of torch itself on some releases. The setting stays an `error` result (a suite that compares torch
    versions must show it, and show it `fixed` against a release without it); its reason names the known bug so
    that nobody hunts it in vitcnn, and the tests accept it on those releases only."""

    torch_series: tuple[str, ...]  # "major.minor" releases it was seen on
    settings: re.Pattern  # setting ids it hits
    error: re.Pattern  # what the error says
    note: str


KNOWN_UPSTREAM = (
    UpstreamFailure(
        ("2.11",), re.compile(r"^convnext_\w+-.*-(?:default|reduce-overhead|max-autotune)-train$"),
        re.compile(r"UnboundLocalError: cannot access local variable 'buf\d+'"),
        "inductor's generated code for a compiled ConvNeXt training step references a buffer it never defined "
        "(seen on torch 2.11.0, CPU; the same setting passes on 2.14.1)"),
)


def known_upstream(setting_id: str, reason: str, torch_version: str | None = None) -> str | None:
    """The note of the known torch bug behind this failure on this torch release, or None."""
    if torch_version is None:
        import torch

        torch_version = torch.__version__
    series = ".".join(torch_version.split("+")[0].split(".")[:2])
    return next((bug.note for bug in KNOWN_UPSTREAM if series in bug.torch_series
                 and bug.settings.search(setting_id) and bug.error.search(reason)), None)


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


def failure(exc: BaseException, setting: Setting) -> Result:
    """The Result of a setting that raised: "oom" or "error" with the reason; a sticky CUDA error is marked fatal,
    a known torch bug named (`upstream`)."""
    status = "oom" if is_oom(exc) else "error"
    reason = f"{type(exc).__name__}: {exc}".strip()[:2000]
    traceback.clear_frames(exc.__traceback__)  # frames hold the model and activations alive
    known = known_upstream(setting.id, reason) if status == "error" else None
    if known:
        reason += f" [known upstream failure: {known}]"
    return Result(setting, status, reason, fatal=status == "error" and is_fatal_device_error(exc), upstream=known)
