"""Fingerprints decide which runs may be compared and which baseline file a run belongs to."""

from __future__ import annotations

import os
import re

import pytest
import torch

from tests.factories import CPU_FINGERPRINT, GPU_FINGERPRINT
from vitcnn import fingerprint


def test_identity_fields_cpu():
    assert tuple(fingerprint.identity(CPU_FINGERPRINT)) == fingerprint.CPU_IDENTITY
    assert fingerprint.identity(CPU_FINGERPRINT)["cpu_model"] == "Test CPU"


def test_identity_fields_gpu():
    ident = fingerprint.identity(GPU_FINGERPRINT)
    assert tuple(ident) == fingerprint.GPU_IDENTITY
    assert ident["gpu_name"] == "NVIDIA H100 80GB HBM3"
    assert ident["driver"] == "580.159.03"
    # the host CPU does not decide GPU timings
    assert "cpu_model" not in ident and "cpu_count" not in ident


@pytest.mark.parametrize("fp", [CPU_FINGERPRINT, GPU_FINGERPRINT], ids=["cpu", "gpu"])
def test_identity_ignores_threads_and_python(fp):
    assert "torch_threads" not in fingerprint.identity(fp)
    assert "python" not in fingerprint.identity(fp)


def test_differences_empty_for_equal_fingerprints():
    assert fingerprint.differences(GPU_FINGERPRINT, dict(GPU_FINGERPRINT)) == {}


def test_differences_lists_each_field_with_both_values():
    other = {**GPU_FINGERPRINT, "gpu_name": "NVIDIA A100-SXM4-80GB", "driver": "550.0", "python": "3.13.0"}
    assert fingerprint.differences(GPU_FINGERPRINT, other) == {
        "driver": ("580.159.03", "550.0"),
        "gpu_name": ("NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"),
    }


def test_differences_cpu_vs_gpu_includes_device():
    diff = fingerprint.differences(CPU_FINGERPRINT, GPU_FINGERPRINT)
    assert diff["device"] == ("cpu", "cuda")
    assert diff["gpu_name"] == (None, "NVIDIA H100 80GB HBM3")


def test_differences_is_antisymmetric():
    other = {**CPU_FINGERPRINT, "torch": "2.16.0"}
    forward = fingerprint.differences(CPU_FINGERPRINT, other)
    backward = fingerprint.differences(other, CPU_FINGERPRINT)
    assert backward == {k: (b, a) for k, (a, b) in forward.items()}


@pytest.mark.parametrize("fp", [CPU_FINGERPRINT, GPU_FINGERPRINT], ids=["cpu", "gpu"])
def test_slug_is_stable_and_readable(fp):
    slug = fingerprint.slug(fp)
    assert slug == fingerprint.slug(dict(reversed(list(fp.items()))))  # key order does not matter
    assert re.fullmatch(r"[a-z0-9.-]+-[0-9a-f]{8}", slug)
    assert "/" not in slug


def test_slug_examples():
    assert fingerprint.slug(GPU_FINGERPRINT).startswith("nvidia-h100-80gb-hbm3-torch2.11.0-")
    assert fingerprint.slug(CPU_FINGERPRINT).startswith("cpu-test-cpu-2c-torch2.15.0-")


@pytest.mark.parametrize("field", fingerprint.GPU_IDENTITY)
def test_slug_changes_with_any_gpu_identity_field(field):
    changed = {**GPU_FINGERPRINT, field: "something else"}
    assert fingerprint.slug(changed) != fingerprint.slug(GPU_FINGERPRINT)


@pytest.mark.parametrize("field", fingerprint.CPU_IDENTITY)
def test_slug_changes_with_any_cpu_identity_field(field):
    changed = {**CPU_FINGERPRINT, field: "something else"}
    assert fingerprint.slug(changed) != fingerprint.slug(CPU_FINGERPRINT)


@pytest.mark.parametrize("fp", [CPU_FINGERPRINT, GPU_FINGERPRINT], ids=["cpu", "gpu"])
@pytest.mark.parametrize("field,value", [("torch_threads", 64), ("python", "3.13.1")])
def test_slug_ignores_non_identity_fields(fp, field, value):
    assert fingerprint.slug({**fp, field: value}) == fingerprint.slug(fp)


def test_gpu_slug_ignores_host_cpu():
    assert fingerprint.slug({**GPU_FINGERPRINT, "cpu_model": "Other", "cpu_count": 64}) == fingerprint.slug(
        GPU_FINGERPRINT
    )


def test_collect_on_cpu():
    fp = fingerprint.collect("cpu")
    assert fp["device"] == "cpu"
    for key in ("cpu_model", "cpu_count", "torch_threads", "python", "torch", "triton", "timm", "cuda", "cudnn"):
        assert key in fp
    assert fp["cpu_count"] == os.cpu_count()
    assert fp["torch"] == torch.__version__
    assert fp["torch_threads"] == torch.get_num_threads()
    assert fp["timm"]  # installed
    assert "gpu_name" not in fp
    ident = fingerprint.identity(fp)
    assert tuple(ident) == fingerprint.CPU_IDENTITY and all(ident[k] is not None for k in ident)
    assert fingerprint.slug(fp) == fingerprint.slug(fingerprint.collect("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="the default device is CUDA here")
def test_collect_defaults_to_cpu_without_cuda():
    assert fingerprint.collect()["device"] == "cpu"
