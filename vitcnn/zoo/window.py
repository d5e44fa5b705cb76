"""Local (window) attention on a token grid, ViTDet/SAM semantics.

Tokens live on a grid x[B, H, W, C]. The grid is zero-padded bottom/right to a multiple of the window size,
cut into non-overlapping windows that move into the batch dimension, attended within each window, merged back
and cropped. Keeping windows in the batch dimension (4-D q/k/v, no mask) is what lets SDPA pick flash or cuDNN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check_grid(x: torch.Tensor, window_size: int) -> None:
    if x.dim() != 4:
        raise ValueError(f"expected a token grid of shape (B, H, W, C), got a {x.dim()}-D tensor {tuple(x.shape)}")
    if window_size < 1:
        raise ValueError(f"window_size must be >= 1 to partition, got {window_size}")


def window_partition(x: torch.Tensor, window_size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Cut (B, H, W, C) into (B·nH·nW, ws, ws, C) windows ordered batch, window row, window column.

    Returns the windows and the padded grid size (Hp, Wp); padding is zeros at rows >= H and cols >= W.
    """
    _check_grid(x, window_size)
    batch, height, width, channels = x.shape
    pad_h = (window_size - height % window_size) % window_size
    pad_w = (window_size - width % window_size) % window_size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    padded_h, padded_w = height + pad_h, width + pad_w
    x = x.reshape(batch, padded_h // window_size, window_size, padded_w // window_size, window_size, channels)
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, channels)
    return windows, (padded_h, padded_w)


def window_unpartition(
    windows: torch.Tensor, window_size: int, padded_hw: tuple[int, int], hw: tuple[int, int]
) -> torch.Tensor:
    """Exact inverse of `window_partition`: merge windows back to (B, H, W, C), dropping the padding."""
    padded_h, padded_w = padded_hw
    height, width = hw
    if windows.dim() != 4 or windows.shape[1] != window_size or windows.shape[2] != window_size:
        raise ValueError(f"expected windows of shape (N, {window_size}, {window_size}, C), got {tuple(windows.shape)}")
    if padded_h % window_size or padded_w % window_size or padded_h < height or padded_w < width:
        raise ValueError(f"padded size {padded_hw} must be multiples of {window_size} covering {hw}")
    rows, cols = padded_h // window_size, padded_w // window_size
    if windows.shape[0] % (rows * cols):
        raise ValueError(f"{windows.shape[0]} windows do not tile a {rows}x{cols} window grid")
    batch = windows.shape[0] // (rows * cols)
    x = windows.reshape(batch, rows, cols, window_size, window_size, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, padded_h, padded_w, -1)
    if padded_h > height or padded_w > width:
        x = x[:, :height, :width, :].contiguous()
    return x


class WindowAttention(nn.Module):
    """Multi-head softmax attention inside non-overlapping windows of a (B, H, W, C) token grid.

    `qkv` and `proj` are laid out like timm's `Attention`, so a timm block's weights can be shared as they are.
    `window_size=0` attends over the whole (unpadded) grid: plain global attention.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if num_heads < 1 or dim % num_heads:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        if window_size < 0:
            raise ValueError(f"window_size must be >= 0 (0 = global attention), got {window_size}")
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.window_size = window_size
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, window_size={self.window_size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"expected a token grid of shape (B, H, W, C), got {tuple(x.shape)}")
        batch, height, width, channels = x.shape
        if channels != self.dim:
            raise ValueError(f"expected {self.dim} channels, got {channels}")
        if self.window_size == 0:
            tokens = x.reshape(batch, height * width, channels)
        else:
            windows, padded_hw = window_partition(x, self.window_size)
            tokens = windows.reshape(windows.shape[0], self.window_size * self.window_size, channels)
        out = self._attend(tokens)
        if self.window_size == 0:
            return out.reshape(batch, height, width, channels)
        out = out.reshape(-1, self.window_size, self.window_size, channels)
        return window_unpartition(out, self.window_size, padded_hw, (height, width))

    def _attend(self, tokens: torch.Tensor) -> torch.Tensor:
        """Attention over the token axis of (N, T, C); 4-D q/k/v and no mask so fused kernels are reachable."""
        n, t, c = tokens.shape
        qkv = self.qkv(tokens).reshape(n, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, t, c))
