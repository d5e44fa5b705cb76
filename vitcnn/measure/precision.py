"""Precision rules: dtypes, every flag that changes fp32 math, and eager-vs-compiled tolerances.

"Strict fp32" must switch off TF32 for matmuls AND for cuDNN convolutions (cuDNN's flag defaults to True), or a
CNN's "fp32" number is secretly TF32. Flags are set explicitly for every setting and restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

# Max |compiled - eager| / max |eager| allowed before timing; loose enough for fusion's reordering, tight
# enough that a wrong kernel (or a wrong model) fails.
CHECK_TOLERANCE = {"fp32": 1e-3, "tf32": 2e-2, "bf16": 1e-1, "fp16": 2e-2}


def current_flags() -> dict:
    """The flags in force now, as recorded with every result."""
    flags = {
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }
    return flags


@contextmanager
def precision_flags(precision: str, cudnn_benchmark: bool = True, cudnn_tf32_in_fp32: bool = False) -> Iterator[dict]:
    """Set matmul precision, both TF32 switches and cudnn.benchmark for `precision`; restore on exit.

    `cudnn_tf32_in_fp32` leaves cuDNN's TF32 on in "fp32" (torch's default), as the essay's code did: only for
    the essay-compatible conventions, never for a strict fp32 number.
    """
    if precision not in DTYPES:
        raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(DTYPES)}")
    saved = (torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    tf32 = precision == "tf32"
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32 or (precision == "fp32" and cudnn_tf32_in_fp32)
    torch.backends.cudnn.benchmark = cudnn_benchmark
    try:
        yield {**current_flags(), "dtype": str(DTYPES[precision]).removeprefix("torch.")}
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cuda.matmul.allow_tf32 = saved[1]
        torch.backends.cudnn.allow_tf32 = saved[2]
        torch.backends.cudnn.benchmark = saved[3]


# Max relative error of the timed output against an fp32, math-attention reference on the same (rounded)
# weights: the setting's own rounding must fit, a wrong kernel (errors of order 1) must not. Eager CPU at 224 px
# with every block awake (models.wake_gains) measured: bf16 0.003-0.013 for ViT/ViTDet/ConvNeXt but 0.08-0.10 for
# NFNet (weight standardisation in bf16); fp16 at most 0.0096 (NFNet). Tolerances leave 2.5-5x headroom.
REFERENCE_TOLERANCE = {"fp32": 1e-3, "tf32": 5e-2, "bf16": 2.5e-1, "fp16": 5e-2}
