"""The output check (vitcnn/measure/reference.py): a compiled output that is not finite must fail it, whatever the
reference says, and the error it records must say so."""

from __future__ import annotations

import math

import pytest
import torch

from vitcnn.measure import reference
from vitcnn.measure.precision import CHECK_TOLERANCE

BAD = {"nan": math.nan, "+inf": math.inf, "-inf": -math.inf}


def _refs(ref: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"eager": ref, "fp32_math": ref.float()}


@pytest.mark.parametrize("value", BAD.values(), ids=BAD.keys())
def test_a_non_finite_output_has_an_infinite_error(value: float):
    """One bad element among finite ones: the error is inf (not nan, which compares false with everything)."""
    ref = torch.ones(2, 8)
    out = ref.clone()
    out[0, 3] = value
    assert reference.relative_error(out, ref) == math.inf


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("value", BAD.values(), ids=BAD.keys())
def test_a_non_finite_output_fails_the_check(value: float, precision: str):
    dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    ref = torch.linspace(-1, 1, 16, dtype=dtype).reshape(1, 16)
    out = ref.clone()
    out[0, 5] = value
    with pytest.raises(reference.CompiledMismatch, match=r"differs from eager: max relative error inf > tolerance"):
        reference.check(out, _refs(ref), precision)


def test_a_non_finite_reference_fails_the_check_too():
    """An eager reference that overflowed cannot vouch for the output: a finite output is not 'within
    tolerance' of a NaN."""
    out = torch.ones(1, 8)
    ref = out.clone()
    ref[0, 0] = math.nan
    with pytest.raises(reference.CompiledMismatch, match="differs from eager"):
        reference.check(out, _refs(ref), "fp32")


def test_a_non_finite_gradient_fails_a_training_steps_check():
    """A training step's check goes name by name (loss, gradient): one NaN in the gradient is enough."""
    good = {"loss": torch.tensor(1.5), "gradient": torch.ones(10)}
    bad = {"loss": good["loss"].clone(), "gradient": good["gradient"].clone()}
    bad["gradient"][7] = math.nan
    refs = {"eager": good, "fp32_math": good, "eager_slice": good}
    assert reference.check(good, refs, "fp32")["check_max_rel_err"] == 0
    with pytest.raises(reference.CompiledMismatch, match="max relative error inf"):
        reference.check(bad, refs, "fp32")


def test_a_finite_output_within_tolerance_passes_with_its_error_recorded():
    """The control: the same check passes a finite output that differs by less than the tolerance."""
    ref = torch.linspace(-1, 1, 16).reshape(1, 16)
    out = ref * (1 + CHECK_TOLERANCE["fp32"] / 2)
    fields = reference.check(out, _refs(ref), "fp32")
    assert 0 < fields["check_max_rel_err"] <= fields["check_tolerance"] == CHECK_TOLERANCE["fp32"]
