"""Peak throughput for MFU: the vendor's dense spec, and a matmul measured on the same device in the same run.

The spec peak says how far from the datasheet a model is; the measured matmul says how far from what this
GPU, clock and library actually deliver. Both are per precision (strict fp32 runs on CUDA cores, not tensor cores).
"""

from __future__ import annotations

import torch

from vitcnn.precision import DTYPES, precision_flags
from vitcnn.timing import plain_timer, synchronize

# Dense (no sparsity) TFLOP/s from NVIDIA datasheets, keyed by a substring of torch's device name; first match wins.
SPEC_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H100 PCIe", {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0}),
    ("H100", {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),  # SXM5
    ("H200", {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),
    ("A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0}),
    ("L4", {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0}),
    ("A10", {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0, "fp16": 125.0}),
)


def spec_tflops(device_name: str | None, precision: str) -> float | None:
    """Datasheet dense peak for `precision` on the named GPU, or None if the GPU is not in the table (or CPU)."""
    if not device_name:
        return None
    for key, peaks in SPEC_TFLOPS:
        if key in device_name:
            return peaks[precision]
    return None


_MEASURED: dict[tuple[str, str], float] = {}


def measured_matmul_tflops(device: torch.device, precision: str, size: int | None = None, reps: int = 20) -> float:
    """Best TFLOP/s of a square matmul in `precision` on `device`; measured once per process and cached.

    Best, not median: it is the ceiling this device reaches, and a transient stall must not lower it (that
    would push MFU above 100%).
    """
    key = (str(device), precision)
    if key in _MEASURED:
        return _MEASURED[key]
    size = size or (8192 if device.type == "cuda" else 1024)
    with precision_flags(precision), torch.inference_mode():
        a = torch.randn(size, size, device=device, dtype=DTYPES[precision])
        b = torch.randn(size, size, device=device, dtype=DTYPES[precision])
        for _ in range(3):
            a @ b
        synchronize(device)
        times = plain_timer(lambda: (a @ b, synchronize(device)), reps)
    _MEASURED[key] = 2 * size**3 / min(times) / 1e12
    return _MEASURED[key]
