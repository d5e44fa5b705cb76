"""Datasheet peaks by exact GPU name (MIG slices by SM share); the measured matmul peak is real and measured once."""

from __future__ import annotations

import pytest
import torch

from vitcnn.measure import peaks


@pytest.mark.parametrize("name, precision, tflops", [
    ("NVIDIA H100 80GB HBM3", "bf16", 989.4), ("NVIDIA H100 80GB HBM3", "fp32", 66.9),
    ("NVIDIA H100 PCIe", "bf16", 756.0), ("NVIDIA H100 NVL", "bf16", 835.5), ("NVIDIA H100 NVL", "tf32", 417.5),
    ("NVIDIA H200", "fp16", 989.4), ("NVIDIA H200 NVL", "bf16", 835.5),
    ("NVIDIA A100-SXM4-40GB", "tf32", 156.0), ("NVIDIA A100-SXM4-80GB", "bf16", 312.0),
    ("NVIDIA A100-PCIE-40GB", "fp32", 19.5), ("NVIDIA A100 80GB PCIe", "fp16", 312.0),
    ("NVIDIA L4", "bf16", 121.0), ("NVIDIA L40S", "bf16", 362.05), ("NVIDIA L40", "bf16", 181.05),
    ("NVIDIA A10", "bf16", 125.0),
])
def test_real_device_names_get_their_own_dense_peak(name, precision, tflops):
    assert peaks.spec_tflops(name, precision) == tflops


def test_dense_peaks_are_ordered_like_the_hardware():
    h100 = "NVIDIA H100 80GB HBM3"
    assert peaks.spec_tflops(h100, "fp32") < peaks.spec_tflops(h100, "tf32") < peaks.spec_tflops(h100, "bf16")
    assert peaks.spec_tflops("NVIDIA L4", "bf16") < peaks.spec_tflops("NVIDIA L40S", "bf16")  # "L4" in name: no


@pytest.mark.parametrize("name", ["NVIDIA A10G", "NVIDIA H100", "NVIDIA A100", "NVIDIA L4S", "Some Future GPU",
                                  "NVIDIA GeForce RTX 4090", "", None])
def test_unknown_names_give_none_never_a_neighbours_peak(name):
    assert peaks.spec_tflops(name, "bf16") is None


def test_mig_slices_scale_by_their_share_of_the_sms():
    full = peaks.spec_tflops("NVIDIA H100 80GB HBM3", "bf16")
    assert peaks.spec_tflops("NVIDIA H100 80GB HBM3 MIG 3g.40gb", "bf16", sm_count=60) == pytest.approx(full * 60 / 132)
    assert peaks.spec_tflops("NVIDIA A100-SXM4-40GB MIG 1g.5gb", "fp32", sm_count=14) == pytest.approx(19.5 * 14 / 108)
    assert peaks.spec_tflops("NVIDIA H100 80GB HBM3 MIG 1g.10gb+me", "bf16", sm_count=16) == pytest.approx(full * 16 / 132)
    assert peaks.spec_tflops("NVIDIA H100 80GB HBM3 MIG 3g.40gb", "bf16") is None  # SM count unknown: no guess
    assert peaks.spec_tflops("NVIDIA Z999 MIG 3g.40gb", "bf16", sm_count=60) is None


def test_measured_matmul_is_positive_and_cached(monkeypatch):
    monkeypatch.setattr(peaks, "_MEASURED", {})
    first = peaks.measured_matmul_tflops(torch.device("cpu"), "fp32", size=256, reps=3)
    assert 0 < first < 100  # TFLOP/s on a CPU
    assert peaks.measured_matmul_tflops(torch.device("cpu"), "fp32") == first
