"""The planted compute regression (tests/plant_matmul.py) that the A/B figures in docs/results.md rest on: it must
add the FLOPs it claims and leave the outputs unchanged."""

from __future__ import annotations

import pytest
import torch

from tests import plant_matmul
from vitcnn.measure.flops import count_flops
from vitcnn.zoo import models

# model -> (+FLOPs with every block planted, with half of them), as fractions of the model's own, at 64 px
EXPECTED = {"vit_t16": (0.080, 0.040), "vitdet_t16": (0.080, 0.040), "convnext_atto": (0.109, 0.055),
            "nfnet_tiny": (0.097, 0.043)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_planted_blocks_add_the_flops_the_docs_claim_and_change_no_output(name):
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    base_model = models.build(name, 64).eval()
    base = count_flops(base_model, x).total
    for fraction, expected in zip((1.0, 0.5), EXPECTED[name]):
        planted = models.build(name, 64).eval()
        planted.load_state_dict(base_model.state_dict())
        plant_matmul.plant(planted, fraction)
        assert count_flops(planted, x).total / base - 1 == pytest.approx(expected, abs=0.002)
        with torch.no_grad():
            torch.testing.assert_close(planted(x), base_model(x))


def test_a_fraction_of_the_blocks_is_spread_evenly():
    assert [plant_matmul.chosen(i, 0.5) for i in range(6)] == [False, True, False, True, False, True]
    assert all(plant_matmul.chosen(i, 1.0) for i in range(12))
    assert not any(plant_matmul.chosen(i, 0.0) for i in range(12))
