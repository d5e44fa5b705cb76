"""FLOPs: every SDPA op counted by shape (any torch), totals match the literature, missing formulas are errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torch.utils.flop_counter as torch_flop_counter
from torch.nn.attention import SDPBackend, sdpa_kernel

from vitcnn.measure import flops
from vitcnn.measure.flops import count_flops
from vitcnn.zoo import models


def analytic(batch, heads, tq, tk, d, dv=None) -> int:
    """Q·Kᵀ plus P·V, 2 FLOPs per multiply-add."""
    return 2 * batch * heads * tq * tk * (d + (d if dv is None else dv))


class Attention(torch.nn.Module):
    def forward(self, q):
        return F.scaled_dot_product_attention(q, q, q)


@pytest.mark.parametrize("name", flops.SDPA_FORWARD_OPS)
def test_forward_formula_of_every_sdpa_op_matches_the_analytic_count(name):
    q, k, v = (torch.empty(2, 12, 197, 64, device="meta") for _ in range(3))
    formula = flops.missing_formulas(registry={}).get(getattr(torch.ops.aten, name, None), flops._forward_formula)
    assert formula(q, k, v, out_val=None) == 4 * 2 * 12 * 197**2 * 64


@pytest.mark.parametrize("name", flops.SDPA_BACKWARD_OPS)
def test_backward_formula_agrees_with_torchs_own(name):
    shapes = [(2, 12, 197, 64)] * 4
    ours = flops.sdpa_backward_flops(*shapes)
    assert ours == torch_flop_counter.sdpa_backward_flop_count(*shapes) == 2 * 2 * 12 * 197**2 * (3 * 64 + 2 * 64)


def test_grouped_query_and_cross_attention_shapes():
    q, k, v = (2, 8, 100, 64), (2, 2, 300, 64), (2, 2, 300, 32)  # 4 query heads per kv head; Tk != Tq; Dv != Dqk
    assert flops.sdpa_forward_flops(q, k, v) == analytic(2, 8, 100, 300, 64, 32)
    with pytest.raises(ValueError, match="incompatible"):
        flops.sdpa_forward_flops(q, (2, 2, 300, 48), v)


@pytest.mark.parametrize("backend", [SDPBackend.MATH, SDPBackend.FLASH_ATTENTION])
def test_cpu_sdpa_is_counted_whichever_op_runs(backend):
    with sdpa_kernel(backend):
        count = count_flops(Attention(), torch.randn(2, 12, 50, 64))
    assert count.error is None
    assert count.total == count.attention == analytic(2, 12, 50, 50, 64)


def test_vit_b16_flops_at_224_match_the_literature():
    count = count_flops(models.build("vit_b16", 224), torch.randn(1, 3, 224, 224))
    assert count.error is None
    assert count.total == pytest.approx(35.1e9, rel=0.02)  # 17.6 GMACs
    assert count.attention == 4 * 12 * 12 * 197**2 * 64 == 1_430_654_976  # 2 matmuls x 2 FLOPs, 12 layers x 12 heads


def test_counting_allocates_nothing_even_where_eager_would_need_tens_of_gigabytes():
    # Math attention at 1024 px, batch 32: each 4097x4097 score matrix for 12 heads x 32 images is ~26 GB in fp32.
    count = count_flops(models.build("vit_b16", 1024), torch.empty(32, 3, 1024, 1024))  # pages never touched
    #)
    assert count.error is None
    assert count.attention == 32 * 12 * analytic(1, 12, 4097, 4097, 64)


def test_attention_flops_grow_quadratically_with_tokens():
    small = count_flops(models.build("vit_t16", 64), torch.randn(1, 3, 64, 64))  # 16 tokens (+1 class token)
    big = count_flops(models.build("vit_t16", 256), torch.randn(1, 3, 256, 256))  # 256 (+1)
    assert big.attention / small.attention == pytest.approx((257 / 17) ** 2, rel=1e-6)
    assert (big.total - big.attention) / (small.total - small.attention) == pytest.approx(257 / 17, rel=0.02)


def test_vitdet_counts_windowed_attention():
    global_attn = count_flops(models.build("vitdet_t16", 256, window_size=16), torch.randn(1, 3, 256, 256)).attention
    windowed_attn = count_flops(models.build("vitdet_t16", 256, window_size=4), torch.randn(1, 3, 256, 256)).attention
    # 8 of 12 blocks attend within 4x4 windows (16 tokens) instead of the 256-token grid.
    assert windowed_attn / global_attn == pytest.approx((4 + 8 * 16 / 256) / 12, rel=1e-6)


def test_an_attention_op_without_a_formula_is_an_error_not_a_silent_undercount(monkeypatch):
    # A torch whose registry lacks every SDPA formula, and no formulas of ours: what torch 2.14 did for CPU flash.
    lacking = {op: f for op, f in torch_flop_counter.flop_registry.items() if not flops.is_attention_op(str(op))}
    monkeypatch.setattr(torch_flop_counter, "flop_registry", lacking)
    monkeypatch.setattr(flops, "missing_formulas", lambda: {})
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        count = count_flops(models.build("vit_t16", 64), torch.randn(1, 3, 64, 64))
    assert count.attention == 0
    assert "no FLOP formula" in count.error and "_scaled_dot_product_flash_attention_for_cpu" in count.error


def test_attention_op_names():
    assert flops.is_attention_op("aten._scaled_dot_product_cudnn_attention")
    assert flops.is_attention_op("aten::_efficient_attention_forward")
    assert not flops.is_attention_op("aten.addmm") and not flops.is_attention_op("aten._fused_sdp_choice")


@pytest.mark.parametrize("name", ["vit_b16", "vitdet_b16", "convnext_b", "nfnet_f0"])
def test_a_training_step_costs_about_three_forwards(name):
    """Backward = two matmuls per forward matmul (input and weight gradients), except the stem's input gradient."""
    model = models.build(name, 224).train()
    x = torch.empty(2, 3, 224, 224)
    forward = count_flops(model, x)
    step = count_flops(model, x, labels=torch.zeros(2, dtype=torch.int64))
    assert forward.error is None and step.error is None
    assert 2.5 <= step.total / forward.total <= 3.5
    if models.spec(name).has_attention:  # attention backward counted: 2.5x its forward (flops.sdpa_backward_flops)
        assert step.attention == pytest.approx(3.5 * forward.attention, rel=0.01)


@pytest.mark.parametrize("groups", [1, 4, 32])
def test_convolution_backward_costs_two_forwards_for_any_grouping(groups):
    """torch's formula counts a grouped conv's weight gradient `groups` times too high; ours does not."""
    conv = torch.nn.Conv2d(32, 64, 7, padding=3, groups=groups)
    x = torch.randn(2, 32, 28, 28, requires_grad=False)

    class Net(torch.nn.Module):
        num_classes = 64

        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, inputs):
            return self.conv(inputs).mean(dim=(2, 3))

    forward = count_flops(Net(), x)
    step = count_flops(Net(), x, labels=torch.zeros(2, dtype=torch.int64))
    conv_forward = 2 * 2 * 28 * 28 * 64 * (32 // groups) * 49
    assert forward.per_op["aten.convolution"] == conv_forward
    assert step.per_op["aten.convolution_backward"] == conv_forward  # weight gradient only: x needs none
