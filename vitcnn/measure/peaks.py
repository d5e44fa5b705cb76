"""Peak throughput for MFU: the vendor's dense spec, and a matmul measured on the same device in the same run.

The spec peak says how far from the datasheet a model is; the measured matmul says how far from what this
GPU, clock and library actually deliver. Both are per precision (strict fp32 runs on CUDA cores, not tensor cores).
"""

from __future__ import annotations

import re

import torch

from vitcnn.measure.precision import DTYPES, precision_flags
from vitcnn.measure.timing import plain_timer, synchronize

# Dense (no sparsity) peak TFLOP/s and SM count per exact `torch.cuda.get_device_name()` string. NVIDIA's
# datasheets print tensor-core figures "with sparsity"; the dense figure is half of that, and is what is used here.
# Sources: NVIDIA H100 datasheet (SXM5 / PCIe / NVL columns), H200 datasheet (SXM / NVL), A100 datasheet (the SXM4
# and PCIe 40/80 GB parts share one set of peaks), L4, L40, L40S and A10 datasheets. SM counts: CUDA device
# properties of each part (used to scale MIG slices).
_H100_SXM = {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}
_H100_PCIE = {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0}
_NVL = {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5}  # H100 NVL and H200 NVL, per GPU
_A100 = {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0}
SPEC_TFLOPS: dict[str, tuple[dict[str, float], int]] = {  # name -> (peaks, SM count)
    "NVIDIA H100 80GB HBM3": (_H100_SXM, 132),
    "NVIDIA H100 PCIe": (_H100_PCIE, 114),
    "NVIDIA H100 NVL": (_NVL, 132),
    "NVIDIA H200": (_H100_SXM, 132),
    "NVIDIA H200 NVL": (_NVL, 132),
    "NVIDIA A100-SXM4-40GB": (_A100, 108),
    "NVIDIA A100-SXM4-80GB": (_A100, 108),
    "NVIDIA A100-PCIE-40GB": (_A100, 108),
    "NVIDIA A100 80GB PCIe": (_A100, 108),
    "NVIDIA L4": ({"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0}, 58),
    "NVIDIA L40": ({"fp32": 90.5, "tf32": 90.5, "bf16": 181.05, "fp16": 181.05}, 142),
    "NVIDIA L40S": ({"fp32": 91.6, "tf32": 183.0, "bf16": 362.05, "fp16": 362.05}, 142),
    "NVIDIA A10": ({"fp32": 31.2, "tf32": 62.5, "bf16": 125.0, "fp16": 125.0}, 72),
}
_MIG = re.compile(r"^(?P<base>.+?) MIG \d+g\.\d+gb(?:\+\w+)?$")  # e.g. "... MIG 3g.40gb", "... MIG 1g.10gb+me"


def spec_tflops(device_name: str | None, precision: str, sm_count: int | None = None) -> float | None:
    """Datasheet dense peak for `precision` on the GPU named exactly `device_name`, or None when the name is not in
    the table (never a neighbour's peak). A MIG slice ("<name> MIG 3g.40gb") gets the full GPU's peak scaled by
    its share of the SMs, which needs `sm_count` (the slice's multi_processor_count)."""
    if not device_name:
        return None
    name = device_name.strip()
    mig = _MIG.match(name)
    entry = SPEC_TFLOPS.get(mig.group("base") if mig else name)
    if entry is None:
        return None
    peaks_by_precision, full_sms = entry
    if not mig:
        return peaks_by_precision[precision]
    if not sm_count or sm_count > full_sms:
        return None
    return peaks_by_precision[precision] * sm_count / full_sms


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
