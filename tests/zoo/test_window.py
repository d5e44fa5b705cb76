"""Window partition/unpartition properties and WindowAttention against an independent naive reference."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vitcnn.zoo.window import WindowAttention, window_partition, window_unpartition

grids = st.tuples(
    st.integers(1, 3), st.integers(1, 13), st.integers(1, 13), st.integers(1, 5), st.integers(1, 16)
)  # B, H, W, C, ws (ws may exceed H or W)


def _grid(b: int, h: int, w: int, c: int, dtype=torch.float32) -> torch.Tensor:
    return torch.arange(1, b * h * w * c + 1, dtype=dtype).reshape(b, h, w, c)


@settings(max_examples=150, deadline=None)
@given(grids, st.booleans())
def test_unpartition_inverts_partition_bitwise(shape, transpose):
    b, h, w, c, ws = shape
    x = torch.randn(b, h, w, c)
    if transpose:  # a non-contiguous view of the same shape
        x = torch.randn(b, w, h, c).transpose(1, 2)
        assert not x.is_contiguous() or h == 1 or w == 1
    windows, padded = window_partition(x, ws)
    hp, wp = padded
    assert hp % ws == 0 and wp % ws == 0 and h <= hp < h + ws and w <= wp < w + ws
    assert windows.shape == (b * (hp // ws) * (wp // ws), ws, ws, c)
    back = window_unpartition(windows, ws, padded, (h, w))
    assert back.shape == x.shape
    assert torch.equal(back, x)


@settings(max_examples=100, deadline=None)
@given(grids)
def test_window_element_mapping_and_zero_padding(shape):
    b, h, w, c, ws = shape
    x = _grid(b, h, w, c)  # every real cell is non-zero
    windows, (hp, wp) = window_partition(x, ws)
    rows, cols = hp // ws, wp // ws
    for n in range(windows.shape[0]):
        bi, rest = divmod(n, rows * cols)
        wr, wc = divmod(rest, cols)
        for i in range(ws):
            for j in range(ws):
                r, col = wr * ws + i, wc * ws + j
                cell = windows[n, i, j]
                if r < h and col < w:
                    assert torch.equal(cell, x[bi, r, col])
                else:
                    assert torch.count_nonzero(cell) == 0


def test_exact_divisibility_needs_no_padding():
    x = torch.randn(2, 8, 12, 3)
    windows, padded = window_partition(x, 4)
    assert padded == (8, 12) and windows.shape == (2 * 2 * 3, 4, 4, 3)
    assert torch.equal(windows[1], x[0, 0:4, 4:8])


def test_window_size_one_is_one_window_per_token():
    x = torch.randn(1, 3, 5, 2)
    windows, padded = window_partition(x, 1)
    assert padded == (3, 5)
    assert torch.equal(windows.reshape(-1, 2), x.reshape(-1, 2))


def naive_window_attention(module: WindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Explicit loops in fp64: pad, and for every window and head, softmax(q k^T * scale) v; merge and crop."""
    ws = module.window_size
    b, h, w, c = x.shape
    heads, hd = module.num_heads, module.head_dim
    wq, bq = module.qkv.weight.double(), module.qkv.bias.double()
    wo, bo = module.proj.weight.double(), module.proj.bias.double()
    if ws == 0:
        win_h, win_w = h, w
        padded = x.double()
    else:
        win_h = win_w = ws
        hp, wp = math.ceil(h / ws) * ws, math.ceil(w / ws) * ws
        padded = torch.zeros(b, hp, wp, c, dtype=torch.float64)
        padded[:, :h, :w] = x.double()
    out = torch.zeros_like(padded)
    for bi in range(b):
        for r0 in range(0, padded.shape[1], win_h):
            for c0 in range(0, padded.shape[2], win_w):
                tokens = padded[bi, r0:r0 + win_h, c0:c0 + win_w].reshape(-1, c)
                qkv = tokens @ wq.T + bq
                q, k, v = qkv[:, :c], qkv[:, c:2 * c], qkv[:, 2 * c:]
                merged = torch.zeros(tokens.shape[0], c, dtype=torch.float64)
                for head in range(heads):
                    sl = slice(head * hd, (head + 1) * hd)
                    scores = (q[:, sl] @ k[:, sl].T) * hd ** -0.5
                    merged[:, sl] = torch.softmax(scores, dim=-1) @ v[:, sl]
                out[bi, r0:r0 + win_h, c0:c0 + win_w] = (merged @ wo.T + bo).reshape(win_h, win_w, c)
    return out[:, :h, :w]


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 2), st.integers(1, 9), st.integers(1, 9), st.sampled_from([(8, 2), (12, 3), (4, 1)]),
       st.integers(0, 6))
def test_window_attention_matches_naive_reference(b, h, w, dim_heads, ws):
    dim, heads = dim_heads
    torch.manual_seed(0)
    module = WindowAttention(dim, heads, ws).double()
    x = torch.randn(b, h, w, dim, dtype=torch.float64)
    expected = naive_window_attention(module, x)
    torch.testing.assert_close(module(x), expected, rtol=1e-10, atol=1e-10)


def test_window_covering_the_grid_is_global_attention():
    torch.manual_seed(1)
    windowed = WindowAttention(16, 4, 6).double()
    global_ = WindowAttention(16, 4, 0).double()
    global_.load_state_dict(windowed.state_dict())
    x = torch.randn(2, 6, 6, 16, dtype=torch.float64)
    torch.testing.assert_close(windowed(x), global_(x), rtol=1e-12, atol=1e-12)


def test_no_influence_across_windows():
    torch.manual_seed(2)
    module = WindowAttention(8, 2, 3).double()
    x = torch.randn(1, 7, 8, 8, dtype=torch.float64)
    y = module(x)
    x2 = x.clone()
    x2[0, 4, 1] += 5.0  # window row 1, window column 0
    y2 = module(x2)
    changed = (y2 - y).abs().amax(dim=-1)[0] > 0
    expected = torch.zeros(7, 8, dtype=torch.bool)
    expected[3:6, 0:3] = True
    assert torch.equal(changed, expected)


def test_compiled_window_attention_matches_eager():
    torch.manual_seed(3)
    module = WindowAttention(16, 2, 4).eval()
    x = torch.randn(2, 10, 7, 16)
    with torch.no_grad():
        compiled = torch.compile(module, dynamic=False)
        torch.testing.assert_close(compiled(x), module(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: WindowAttention(10, 3, 2), "divisible"),
        (lambda: WindowAttention(8, 2, -1), "window_size"),
        (lambda: WindowAttention(8, 2, 2)(torch.randn(2, 4, 8)), "(B, H, W, C)"),
        (lambda: WindowAttention(8, 2, 2)(torch.randn(1, 4, 4, 6)), "channels"),
        (lambda: window_partition(torch.randn(4, 4, 3), 2), "(B, H, W, C)"),
        (lambda: window_partition(torch.randn(1, 4, 4, 3), 0), "window_size"),
        (lambda: window_unpartition(torch.randn(3, 2, 2, 1), 2, (4, 4), (4, 4)), "tile"),
    ],
)
def test_bad_input_raises_value_error(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bf16_flash_only_matches_math():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.manual_seed(4)
    module = WindowAttention(768, 12, 16).cuda().to(torch.bfloat16).eval()
    x = torch.randn(1, 64, 64, 768, device="cuda", dtype=torch.bfloat16)
    with torch.inference_mode():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):  # raises if flash cannot take these tensors
            flash = module(x)
        with sdpa_kernel(SDPBackend.MATH):
            math_ = module(x)
    torch.testing.assert_close(flash.float(), math_.float(), rtol=2e-2, atol=2e-2)
