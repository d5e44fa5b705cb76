"""ViTDet: a plain timm ViT upcycled to window attention in most blocks and global attention in a few.

Upcycling shares the ViT's own qkv/proj weights (no copies), so a ViT pre-trained at 224 px with window size 14
sees, in its windowed blocks, exactly the token neighbourhoods it was trained on.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from timm.models.vision_transformer import Attention, VisionTransformer
from torch import nn

from vitcnn.zoo.window import WindowAttention

DEFAULT_GLOBAL_BLOCKS = (2, 5, 8, 11)


class GridWindowAttention(WindowAttention):
    """Drop-in for a timm `Attention` in a block: token sequence -> patch grid -> window attention -> sequence.

    Parameters keep timm's names (`qkv`, `proj`), so a plain ViT's state dict loads into ViTDet unchanged.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, grid_size: tuple[int, int],
                 qkv_bias: bool = True) -> None:
        super().__init__(dim, num_heads, window_size, qkv_bias)
        self.grid_size = grid_size

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, grid_size={self.grid_size}"

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        if attn_mask is not None or is_causal:
            raise ValueError("window attention takes no attention mask")
        if x.dim() != 3:
            raise ValueError(f"expected a token sequence (B, N, C), got {tuple(x.shape)}")
        batch, tokens, channels = x.shape
        grid_h, grid_w = self.grid_size
        if tokens != grid_h * grid_w:
            raise ValueError(f"expected {grid_h}x{grid_w}={grid_h * grid_w} tokens, got {tokens}")
        grid = super().forward(x.reshape(batch, grid_h, grid_w, channels))
        return grid.reshape(batch, tokens, channels)


def _window_attention_sharing(attn: Attention, window_size: int, grid_size: tuple[int, int]) -> GridWindowAttention:
    """A GridWindowAttention whose qkv/proj are the timm Attention's own modules (shared, not copied)."""
    extras = {
        "q_norm": attn.q_norm, "k_norm": attn.k_norm, "norm": getattr(attn, "norm", nn.Identity()),
    }
    unsupported = [name for name, module in extras.items() if not isinstance(module, nn.Identity)]
    if getattr(attn, "gate", None) is not None:
        unsupported.append("gate")
    if unsupported:
        raise ValueError(f"cannot upcycle attention with {', '.join(unsupported)}: WindowAttention has none")
    dim = attn.qkv.in_features
    if attn.num_heads * attn.head_dim != dim or attn.proj.in_features != dim:
        raise ValueError("cannot upcycle attention whose inner dim differs from the model dim")
    with torch.device("meta"):
        window_attention = GridWindowAttention(
            dim, attn.num_heads, window_size, grid_size, qkv_bias=attn.qkv.bias is not None
        )
    window_attention.qkv = attn.qkv
    window_attention.proj = attn.proj
    return window_attention


def upcycle(
    vit: VisionTransformer, window_size: int, global_blocks: Iterable[int] = DEFAULT_GLOBAL_BLOCKS
) -> VisionTransformer:
    """Turn a prefix-token-free timm ViT into ViTDet in place (and return it).

    Blocks not in `global_blocks` attend within `window_size` x `window_size` windows of the patch grid; the
    global blocks keep timm's attention untouched.
    """
    if not isinstance(vit, VisionTransformer):
        raise ValueError(f"upcycle needs a timm VisionTransformer, got {type(vit).__name__}")
    if vit.num_prefix_tokens:
        raise ValueError(
            f"upcycle needs a ViT without prefix tokens (class_token=False, no registers); "
            f"this one has {vit.num_prefix_tokens}"
        )
    if getattr(vit, "dynamic_img_size", False):
        raise ValueError("upcycle needs a fixed patch grid; build the ViT with dynamic_img_size=False")
    if window_size < 1:
        raise ValueError(f"window_size must be >= 1, got {window_size}")
    global_blocks = tuple(global_blocks)
    depth = len(vit.blocks)
    outside = [i for i in global_blocks if not 0 <= i < depth]
    if outside:
        raise ValueError(f"global_blocks {outside} outside the model's blocks 0..{depth - 1}")
    grid_size = tuple(vit.patch_embed.grid_size)
    for index, block in enumerate(vit.blocks):
        if index in global_blocks:
            continue
        if not isinstance(block.attn, Attention):
            raise ValueError(f"block {index} has {type(block.attn).__name__}, expected timm Attention")
        block.attn = _window_attention_sharing(block.attn, window_size, grid_size)
    return vit
