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
def precision_flags(precision: str, cudnn_benchmark: bool = True) -> Iterator[dict]:
    """Set matmul precision, both TF32 switches and cudnn.benchmark for `precision`; restore on exit."""
    if precision not in DTYPES:
        raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(DTYPES)}")
    saved = (torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    tf32 = precision == "tf32"
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = cudnn_benchmark
    try:
        yield {**current_flags(), "dtype": str(DTYPES[precision]).removeprefix("torch.")}
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cuda.matmul.allow_tf32 = saved[1]
        torch.backends.cudnn.allow_tf32 = saved[2]
        torch.backends.cudnn.benchmark = saved[3]
