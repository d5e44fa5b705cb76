"""Test-only pytest plugin (`-p tests.force_failure`): chosen models fail or slow down inside the real harness.

VITCNN_FORCE_OOM=name[,name]   -> their forward raises torch.OutOfMemoryError, as a too-large setting would;
VITCNN_FORCE_ERROR=name[,name] -> their forward raises a RuntimeError, as a broken kernel would;
VITCNN_FORCE_CUDA_ERROR=name[,name] -> their forward raises a sticky CUDA error (illegal memory access);
VITCNN_FORCE_SLOW=name[,name]  -> their forward runs the real model SLOWDOWN_FACTOR times (VITCNN_FORCE_SLOW_FACTOR, 10): a planted regression
                                  far outside run-to-run noise (separate runs on a shared 2-core VM differ by up
                                  to ~1.8x), so a test of the gate's wiring through pytest cannot flake.
VITCNN_FORCE_EXIT_AT_BLOCK=n   -> a `vitcnn ab` worker process exits (code 3, a line on stderr) when asked for its
                                  n-th timed block: a side that dies in the middle of a session.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import torch

from vitcnn.zoo import models

SLOWDOWN_FACTOR = int(os.environ.get("VITCNN_FORCE_SLOW_FACTOR", "10"))  # whole calls of the real model
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


class SlowModel(torch.nn.Module):
    """The real model, run SLOWDOWN_FACTOR times per call: same output, that many times the work."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(SLOWDOWN_FACTOR - 1):
            self.inner(x)
        return self.inner(x)


def _replace_builder(name: str, wrap) -> None:
    spec = models.spec(name)

    def builder(img_size, _build=spec.builder, **overrides):
        return wrap(_build(img_size, **overrides))

    models.REGISTRY[name] = dataclasses.replace(spec, builder=builder)


def pytest_configure(config) -> None:
    for variable, make_error in FAILURES.items():
        for name in filter(None, os.environ.get(variable, "").split(",")):
            _replace_builder(name, lambda inner, _make=make_error: FailingModel(inner, _make))
    for name in filter(None, os.environ.get("VITCNN_FORCE_SLOW", "").split(",")):
        _replace_builder(name, SlowModel)
    if os.environ.get("VITCNN_FORCE_EXIT_AT_BLOCK"):
        _exit_at_block(int(os.environ["VITCNN_FORCE_EXIT_AT_BLOCK"]))


def _exit_at_block(n: int) -> None:
    """Wrap the worker's block handler (the worker runs as __main__ under `python -m vitcnn.workers.worker`)."""
    from vitcnn.workers import worker

    served = []
    for module in {sys.modules.get("__main__"), worker}:
        cls = getattr(module, "Worker", None)
        if cls is None:
            continue

        def dying_block(self, request: dict, _block=cls.block) -> dict:
            served.append(request)
            if len(served) == n:
                print(f"planted exit at block {n} (forced by test)", file=sys.stderr, flush=True)
                os._exit(3)
            return _block(self, request)

        cls.block = dying_block
