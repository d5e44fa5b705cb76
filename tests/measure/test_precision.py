"""Every precision flag is set explicitly for a setting and restored afterwards."""

from __future__ import annotations

import pytest
import torch

from vitcnn.measure.precision import CHECK_TOLERANCE, DTYPES, precision_flags


@pytest.mark.parametrize("precision, tf32", [("fp32", False), ("tf32", True), ("bf16", False), ("fp16", False)])
def test_flags_in_force(precision, tf32):
    with precision_flags(precision) as flags:
        assert torch.backends.cuda.matmul.allow_tf32 is tf32
        assert torch.backends.cudnn.allow_tf32 is tf32  # cuDNN defaults to True: strict fp32 must turn it off
        assert torch.get_float32_matmul_precision() == ("high" if tf32 else "highest")
        assert torch.backends.cudnn.benchmark is True
        assert flags["dtype"] == str(DTYPES[precision]).removeprefix("torch.")


def test_flags_are_restored_even_after_an_error():
    before = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    with pytest.raises(RuntimeError), precision_flags("tf32"):
        raise RuntimeError("boom")
    assert (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.benchmark) == before


def test_unknown_precision_and_tolerances():
    with pytest.raises(ValueError, match="fp32, tf32, bf16, fp16"), precision_flags("fp8"):
        pass
    assert CHECK_TOLERANCE["fp32"] < CHECK_TOLERANCE["tf32"] <= CHECK_TOLERANCE["bf16"]
