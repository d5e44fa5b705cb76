"""Fingerprints decide which runs may be compared and which baseline file a run belongs to."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.factories import (
    CPU_FINGERPRINT,
    GPU_FINGERPRINT,
    LEGACY_CPU_FINGERPRINT,
    LEGACY_GPU_FINGERPRINT,
    RESULTS_CPU_RUN,
    amx_machine,
    non_amx_machine,
)
from vitcnn import fingerprint, nvml
from vitcnn.measure import allocator


def test_identity_fields_cpu():
    assert tuple(fingerprint.identity(CPU_FINGERPRINT)) == fingerprint.CPU_IDENTITY
    assert fingerprint.identity(CPU_FINGERPRINT)["cpu_model"] == "Test CPU"


def test_identity_fields_gpu():
    ident = fingerprint.identity(GPU_FINGERPRINT)
    assert tuple(ident) == fingerprint.GPU_IDENTITY
    assert ident["gpu_name"] == "NVIDIA H100 80GB HBM3"
    assert ident["driver"] == "580.159.03"
    # launch-bound settings run at the host's speed: its model and ISA are part of a GPU's identity (version 3)
    assert ident["cpu_model"] == "Test CPU" and ident["cpu_features"] == GPU_FINGERPRINT["cpu_features"]
    assert "cpu_count" not in ident and "torch_threads" not in ident


def test_a_gpu_fingerprint_without_its_host_loads_keeps_its_slug_and_is_incomplete():
    before = {**GPU_FINGERPRINT, "identity_version": 2}  # what vitcnn wrote before the host joined
    assert not fingerprint.is_complete(before) and fingerprint.records_cpu_isa(before)
    assert fingerprint.missing_identity(before) == fingerprint.HOST_IDENTITY
    assert fingerprint.slug(before) != fingerprint.slug(GPU_FINGERPRINT)
    assert fingerprint.older_slugs(GPU_FINGERPRINT) == [fingerprint.slug(before), fingerprint.legacy_slug(before)]
    other_host = {**GPU_FINGERPRINT, "cpu_model": "AMD EPYC 9654", "cpu_vendor": "AuthenticAMD"}
    assert set(fingerprint.differences(GPU_FINGERPRINT, other_host)) == {"cpu_model", "cpu_vendor"}
    assert fingerprint.differences(before, other_host) == {}  # the older one cannot say: incomplete, not refused


def test_the_committed_h200_baseline_keeps_its_name_and_says_it_lacks_the_host():
    [path] = (Path(__file__).resolve().parents[1] / "baselines").glob("nvidia-h200-*.json")
    fp = json.loads(path.read_text())["machine_info"]["vitcnn_fingerprint"]
    assert fingerprint.slug(fp) == path.stem and fingerprint.missing_identity(fp) == fingerprint.HOST_IDENTITY


@pytest.mark.parametrize("fp", [CPU_FINGERPRINT, GPU_FINGERPRINT], ids=["cpu", "gpu"])
def test_identity_ignores_python(fp):
    assert "python" not in fingerprint.identity(fp)


def test_cpu_identity_includes_threads_gpu_identity_does_not():
    assert fingerprint.identity(CPU_FINGERPRINT)["torch_threads"] == 2  # kernels split work over the threads
    assert "torch_threads" not in fingerprint.identity(GPU_FINGERPRINT)


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
    assert fingerprint.slug(CPU_FINGERPRINT).startswith("cpu-test-cpu-avx512-2c-torch2.15.0-")
    mig = {**GPU_FINGERPRINT, "gpu_mig": "NVIDIA H100 80GB HBM3 MIG 1g.10gb"}
    assert fingerprint.slug(mig).startswith("nvidia-h100-80gb-hbm3-mig-1g.10gb-torch2.11.0-")


@pytest.mark.parametrize("field", fingerprint.GPU_IDENTITY)
def test_slug_changes_with_any_gpu_identity_field(field):
    changed = {**GPU_FINGERPRINT, field: "something else"}
    assert fingerprint.slug(changed) != fingerprint.slug(GPU_FINGERPRINT)


@pytest.mark.parametrize("field", fingerprint.CPU_IDENTITY)
def test_slug_changes_with_any_cpu_identity_field(field):
    changed = {**CPU_FINGERPRINT, field: "something else"}
    assert fingerprint.slug(changed) != fingerprint.slug(CPU_FINGERPRINT)


@pytest.mark.parametrize("fp", [CPU_FINGERPRINT, GPU_FINGERPRINT], ids=["cpu", "gpu"])
@pytest.mark.parametrize("field,value", [("python", "3.13.1"), ("host_name", "other")])
def test_slug_ignores_non_identity_fields(fp, field, value):
    assert fingerprint.slug({**fp, field: value}) == fingerprint.slug(fp)


@pytest.mark.parametrize("field,value", [("gpu_power_limit_w", 400), ("gpu_persistence", "off"),
                                         ("gpu_application_clocks_mhz", {"sm": 1200, "mem": 2619})])
def test_gpu_conditions_are_not_identity(field, value):
    changed = {**GPU_FINGERPRINT, field: value}
    assert fingerprint.slug(changed) == fingerprint.slug(GPU_FINGERPRINT)
    assert fingerprint.differences(GPU_FINGERPRINT, changed) == {}
    assert fingerprint.condition_changes(GPU_FINGERPRINT, changed) == {field: (GPU_FINGERPRINT[field], value)}


def test_conditions_only_where_recorded():
    assert fingerprint.conditions(CPU_FINGERPRINT) == {}
    assert fingerprint.condition_changes(LEGACY_GPU_FINGERPRINT, GPU_FINGERPRINT) == {}
    assert set(fingerprint.conditions(GPU_FINGERPRINT)) == set(fingerprint.GPU_CONDITIONS)


def test_gpu_slug_follows_the_host_cpu_but_not_its_cores_or_threads():
    assert fingerprint.slug({**GPU_FINGERPRINT, "cpu_count": 64, "torch_threads": 64}) == \
        fingerprint.slug(GPU_FINGERPRINT)
    for host in ({"cpu_model": "Other"}, {"cpu_features": []}, {"cpu_model_number": 1}):
        assert fingerprint.slug({**GPU_FINGERPRINT, **host}) != fingerprint.slug(GPU_FINGERPRINT)


# ------------------------------------------------------------- the two machines of issue 18 (committed results/cpu)


def test_amx_and_non_amx_machines_get_different_slugs():
    amx, other = amx_machine(), non_amx_machine()
    committed = json.loads(RESULTS_CPU_RUN.read_text())["machine_info"]["vitcnn_slug"]
    # the first format gave both machines this one slug; a complete identity tells them apart
    assert fingerprint.legacy_slug(amx) == fingerprint.legacy_slug(other) == committed
    assert fingerprint.slug(amx) != fingerprint.slug(other)
    assert fingerprint.slug(amx).startswith("cpu-intel-r-xeon-r-processor-amx-2c-")
    assert fingerprint.slug(other).startswith("cpu-intel-r-xeon-r-processor-avx512-2c-")
    diff = fingerprint.differences(amx, other)
    assert set(diff) == {"cpu_features", "cpu_model_number"}
    assert diff["cpu_model_number"] == (167, 207)
    assert "amx_bf16" in diff["cpu_features"][0] and "amx_bf16" not in diff["cpu_features"][1]


@pytest.mark.parametrize("field,value", [("cpu_capability", "AVX2"), ("cpu_stepping", 2), ("torch_threads", 1),
                                         ("cpu_family", 25), ("cpu_vendor", "AuthenticAMD")])
def test_amx_machine_slug_follows_each_kernel_field(field, value):
    amx = amx_machine()
    assert fingerprint.slug({**amx, field: value}) != fingerprint.slug(amx)


# ---------------------------------------------------------------------------------- fingerprints of the first format


@pytest.mark.parametrize("legacy", [LEGACY_CPU_FINGERPRINT, LEGACY_GPU_FINGERPRINT], ids=["cpu", "gpu"])
def test_legacy_fingerprint_keeps_its_slug_and_is_incomplete(legacy):
    assert not fingerprint.is_complete(legacy)
    assert fingerprint.slug(legacy) == fingerprint.legacy_slug(legacy)
    full = fingerprint.GPU_IDENTITY if legacy["device"] == "cuda" else fingerprint.CPU_IDENTITY
    assert set(fingerprint.missing_identity(legacy)) == set(full) - set(fingerprint.identity(legacy))
    assert fingerprint.missing_identity(legacy)


def test_committed_run_keeps_its_slug():
    machine = json.loads(RESULTS_CPU_RUN.read_text())["machine_info"]
    assert fingerprint.slug(machine["vitcnn_fingerprint"]) == machine["vitcnn_slug"]
    assert "cpu_features" in fingerprint.missing_identity(machine["vitcnn_fingerprint"])


@pytest.mark.parametrize("complete,legacy", [(CPU_FINGERPRINT, LEGACY_CPU_FINGERPRINT),
                                             (GPU_FINGERPRINT, LEGACY_GPU_FINGERPRINT)], ids=["cpu", "gpu"])
def test_legacy_vs_complete_compares_the_shared_fields(complete, legacy):
    assert fingerprint.missing_identity(complete) == ()
    assert fingerprint.differences(legacy, complete) == {}  # only what both record
    assert fingerprint.legacy_slug(complete) == fingerprint.slug(legacy)
    assert fingerprint.differences(legacy, {**complete, "torch": "2.16.0"}) == {"torch": (legacy["torch"], "2.16.0")}


# ----------------------------------------------------------------------------------------- GPU fields from NVML


def _props(**overrides):
    return SimpleNamespace(**{"name": "NVIDIA H100 80GB HBM3", "multi_processor_count": 132,
                              "total_memory": 85_000_000_000, "major": 9, "minor": 0, **overrides})


NVML_ANSWERS = {"driver": "580.159.03", "board": "692-2G520-0200-000", "mig": "off", "ecc": "on",
                "persistence": "on", "power_limit_w": 700, "default_power_limit_w": 700,
                "max_clocks_mhz": {"sm": 1980, "mem": 2619}, "application_clocks_mhz": {"sm": 1755, "mem": 2619}}


def test_gpu_fields_from_nvml_answers():
    fields = fingerprint.gpu_fields(_props(), NVML_ANSWERS)
    assert fields["gpu_board"] == "692-2G520-0200-000" and fields["gpu_ecc"] == "on"
    assert fields["gpu_max_clocks_mhz"] == {"sm": 1980, "mem": 2619}
    assert fields["gpu_default_power_limit_w"] == fields["gpu_power_limit_w"] == 700
    assert fields["gpu_nvml_error"] is None and fields["driver"] == "580.159.03"


@pytest.mark.parametrize("answer,value,field", [
    ("board", "692-2G520-0210-000", "gpu_board"),  # another SKU of the same name (PCIe, other power class)
    ("mig", "NVIDIA H100 80GB HBM3 MIG 3g.40gb", "gpu_mig"),
    ("ecc", "off", "gpu_ecc"),
    ("max_clocks_mhz", {"sm": 1755, "mem": 2619}, "gpu_max_clocks_mhz"),
    ("default_power_limit_w", 350, "gpu_default_power_limit_w"),
])
def test_gpu_identity_answers_change_the_slug(answer, value, field):
    base = {**GPU_FINGERPRINT, **fingerprint.gpu_fields(_props(), NVML_ANSWERS)}
    changed = {**GPU_FINGERPRINT, **fingerprint.gpu_fields(_props(), {**NVML_ANSWERS, answer: value})}
    assert fingerprint.slug(changed) != fingerprint.slug(base)
    assert set(fingerprint.differences(base, changed)) == {field}


def test_gpu_fields_without_nvml_say_why(monkeypatch):
    monkeypatch.setattr(fingerprint, "_smi_driver_version", lambda: "550.1")
    fields = fingerprint.gpu_fields(_props(), {"error": "NVML unavailable: ImportError: no pynvml"})
    assert fields["gpu_nvml_error"].startswith("NVML unavailable") and fields["driver"] == "550.1"
    assert fields["gpu_board"] is None and fields["gpu_power_limit_w"] is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_collect_on_a_real_gpu_reads_nvml():
    fp = fingerprint.collect("cuda")
    assert fingerprint.is_complete(fp) and fp["gpu_name"] == torch.cuda.get_device_name()
    assert fp["gpu_nvml_error"] is None, fp["gpu_nvml_error"]
    assert fp["driver"] and fp["gpu_max_clocks_mhz"]["sm"] > 0 and fp["gpu_default_power_limit_w"] > 0
    assert fp["gpu_mig"] is not None and fp["gpu_ecc"] in ("on", "off", None)
    assert nvml.device_info(None, None)["error"]  # no device named: says so, never guesses


def test_collect_on_cpu():
    fp = fingerprint.collect("cpu")
    assert fp["device"] == "cpu" and fingerprint.is_complete(fp)
    assert fp["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    for key in ("cpu_model", "cpu_count", "torch_threads", "python", "torch", "triton", "timm", "cuda", "cudnn"):
        assert key in fp
    assert fp["cpu_count"] == os.cpu_count()
    assert fp["torch"] == torch.__version__
    assert fp["torch_threads"] == torch.get_num_threads()
    assert fp["timm"]  # installed
    assert "gpu_name" not in fp
    assert fp["malloc"] == allocator.condition()  # a condition, not identity: the slug ignores it
    ident = fingerprint.identity(fp)
    assert tuple(ident) == fingerprint.CPU_IDENTITY and all(ident[k] is not None for k in ident)
    assert fingerprint.slug(fp) == fingerprint.slug(fingerprint.collect("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="the default device is CUDA here")
def test_collect_defaults_to_cpu_without_cuda():
    assert fingerprint.collect()["device"] == "cpu"
