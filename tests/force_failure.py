"""Test-only pytest plugin (`-p tests.force_failure`): chosen models fail inside the real harness.

VITCNN_FORCE_OOM=name[,name]   -> their forward raises torch.OutOfMemoryError, as a too-large setting would;
VITCNN_FORCE_ERROR=name[,name] -> their forward raises a RuntimeError, as a broken kernel would;
VITCNN_FORCE_CUDA_ERROR=name[,name] -> their forward raises a sticky CUDA error (illegal memory access).
"""

from __future__ import annotations

import dataclasses
import os

import torch

from vitcnn import models

FAILURES = {
    "VITCNN_FORCE_OOM": lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB (forced by test)"),
    "VITCNN_FORCE_ERROR": lambda: RuntimeError("kernel exploded (forced by test)"),
    "VITCNN_FORCE_CUDA_ERROR": lambda: RuntimeError(
        "CUDA error: an illegal memory access was encountered (forced by test)"),
}


class FailingModel(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module, make_error) -> None:
        super().__init__()
        self.inner = inner
        self.make_error = make_error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise self.make_error()


def pytest_configure(config) -> None:
    for variable, make_error in FAILURES.items():
        for name in filter(None, os.environ.get(variable, "").split(",")):
            spec = models.spec(name)

            def builder(img_size, _build=spec.builder, _make=make_error, **overrides):
                return FailingModel(_build(img_size, **overrides), _make)

            models.REGISTRY[name] = dataclasses.replace(spec, builder=builder)
