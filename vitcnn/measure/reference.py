"""What the compiled output is checked against, on a small slice of the batch so the check never OOMs first.

Two references, because one cannot see everything:
- eager, in the setting's dtype and under the same `sdpa_kernel`: catches compiler bugs with tight tolerances,
  but a broken fused kernel agrees with itself there;
- eager in fp32 with the math SDPA backend and strict fp32 flags (on an fp32 copy of the same, already rounded
  weights): catches a wrong kernel, within a tolerance that allows the setting's own precision.
"""

from __future__ import annotations

import copy
import math

import torch

from vitcnn.measure.failures import CompiledMismatch
from vitcnn.measure.precision import (
    CHECK_TOLERANCE,
    REFERENCE_TOLERANCE,
    precision_flags,
)
from vitcnn.measure.sdpa import sdpa_context

SLICE = 1  # images of the batch the references run on


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """max |out - ref| / max |ref|, in fp32; inf if anything is not finite."""
    out, ref = out.float(), ref.float()
    if not torch.isfinite(out).all():
        return math.inf
    return ((out - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()


def references(model: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Reference outputs for `x[:SLICE]`: "eager" (setting's dtype and SDPA context, which the caller holds) and
    "fp32_math" (fp32 copy of the model, math attention, no TF32)."""
    part = x[:SLICE]
    refs = {"eager": model(part)}
    fp32_model = copy.deepcopy(model).float()
    with precision_flags("fp32"), sdpa_context("math"):
        refs["fp32_math"] = fp32_model(part.float())
    del fp32_model
    return refs


def _error(out: torch.Tensor | dict, ref: torch.Tensor | dict) -> float:
    """relative_error of a tensor, or the largest over a dict of named tensors (a training step's loss and
    gradient)."""
    if isinstance(ref, dict):
        return max(relative_error(out[name], ref[name]) for name in ref)
    return relative_error(out, ref)


def check(out: torch.Tensor | dict, refs: dict, precision: str) -> dict:
    """Compare `out` with both references; raise CompiledMismatch if either is off. Returns the recorded fields.

    An output tensor is compared on its first SLICE rows (for an eager setting the "eager" check then compares the
    full batch with the slice); a dict (training.references: loss and gradient) is compared name by name, and its
    fp32-math reference with the eager step on the same slice.
    """
    part = out[:SLICE] if isinstance(out, torch.Tensor) else out
    eager_err = _error(part, refs["eager"])
    math_err = _error(refs.get("eager_slice", part), refs["fp32_math"])  # training: eager and math on the slice
    fields = {"check_max_rel_err": eager_err, "check_tolerance": CHECK_TOLERANCE[precision],
              "check_fp32_math_rel_err": math_err, "check_fp32_math_tolerance": REFERENCE_TOLERANCE[precision]}
    if not eager_err <= CHECK_TOLERANCE[precision]:
        raise CompiledMismatch(
            f"compiled output differs from eager: max relative error {eager_err:.3g} > tolerance "
            f"{CHECK_TOLERANCE[precision]:g} ({precision})")
    if not math_err <= REFERENCE_TOLERANCE[precision]:
        raise CompiledMismatch(
            f"output differs from the fp32 math-attention reference: max relative error {math_err:.3g} > "
            f"tolerance {REFERENCE_TOLERANCE[precision]:g} ({precision}): a wrong kernel or precision")
    return fields
