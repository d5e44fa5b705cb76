"""Datasheet peaks are looked up by GPU name; the measured matmul peak is real and measured once."""

from __future__ import annotations

import torch

from vitcnn import peaks


def test_spec_lookup_prefers_the_specific_name():
    assert peaks.spec_tflops("NVIDIA H100 PCIe", "bf16") == 756.0
    assert peaks.spec_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.4
    assert peaks.spec_tflops("NVIDIA H200", "fp32") == 66.9
    assert peaks.spec_tflops("NVIDIA H100 80GB HBM3", "tf32") < peaks.spec_tflops("NVIDIA H100 80GB HBM3", "fp16")
    assert peaks.spec_tflops("Some Future GPU", "bf16") is None
    assert peaks.spec_tflops(None, "bf16") is None


def test_measured_matmul_is_positive_and_cached(monkeypatch):
    monkeypatch.setattr(peaks, "_MEASURED", {})
    first = peaks.measured_matmul_tflops(torch.device("cpu"), "fp32", size=256, reps=3)
    assert 0 < first < 100  # TFLOP/s on a CPU
    assert peaks.measured_matmul_tflops(torch.device("cpu"), "fp32") == first
