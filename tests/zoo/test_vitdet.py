"""ViTDet upcycling: weight sharing, equivalence with the plain ViT when a window is the whole grid, errors."""

from __future__ import annotations

import pytest
import timm
import torch

from vitcnn.zoo.vitdet import GridWindowAttention, upcycle


def _vit(img_size: int = 64, **kwargs) -> torch.nn.Module:
    kwargs = {"class_token": False, "global_pool": "avg", **kwargs}
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=img_size, **kwargs).eval()


def test_window_equal_to_grid_reproduces_the_vit():
    torch.manual_seed(0)
    vit = _vit(64).double()
    reference = _vit(64).double()
    reference.load_state_dict(vit.state_dict())
    vitdet = upcycle(vit, window_size=4)  # grid is 4x4
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(vitdet(x), reference(x), rtol=1e-10, atol=1e-10)


def test_upcycle_shares_weights_and_keeps_state_dict_keys():
    vit = _vit(96)
    qkv_before = vit.blocks[0].attn.qkv.weight
    keys_before = list(vit.state_dict())
    upcycle(vit, window_size=3, global_blocks=(2, 5, 8, 11))
    assert isinstance(vit.blocks[0].attn, GridWindowAttention)
    assert vit.blocks[0].attn.qkv.weight is qkv_before  # shared, not copied
    assert not isinstance(vit.blocks[2].attn, GridWindowAttention)
    assert [i for i, b in enumerate(vit.blocks) if isinstance(b.attn, GridWindowAttention)] == [0, 1, 3, 4, 6, 7, 9, 10]
    assert list(vit.state_dict()) == keys_before


def test_smaller_windows_change_the_output():
    torch.manual_seed(1)
    vit = _vit(64)
    reference = _vit(64)
    reference.load_state_dict(vit.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(upcycle(vit, window_size=2)(x), reference(x))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: upcycle(_vit(64, class_token=True, global_pool="token"), 4), "prefix tokens"),
        (lambda: upcycle(_vit(64, reg_tokens=4), 4), "prefix tokens"),
        (lambda: upcycle(_vit(64), 0), "window_size"),
        (lambda: upcycle(_vit(64), 4, global_blocks=(12,)), "global_blocks"),
        (lambda: upcycle(torch.nn.Linear(2, 2), 4), "VisionTransformer"),
        (lambda: upcycle(_vit(64, qk_norm=True), 4), "q_norm"),
    ],
)
def test_bad_models_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_window_attention_rejects_masks_and_wrong_token_counts():
    vit = upcycle(_vit(64), 2)
    attn = vit.blocks[0].attn
    with pytest.raises(ValueError, match="mask"):
        attn(torch.randn(1, 16, 192), attn_mask=torch.ones(16, 16, dtype=torch.bool))
    with pytest.raises(ValueError, match="tokens"):
        attn(torch.randn(1, 15, 192))
