"""FLOPs of one forward (or training step), attention included, on any supported torch, without allocating the
model's activations.

Two traps this module exists for:
- torch's FlopCounterMode counts only ops that have a formula in its registry, and the registry differs between
  versions (torch 2.14 has none for CPU's `_scaled_dot_product_flash_attention_for_cpu`, so a ViT's attention
  silently counted 0). We register a shape-derived formula for every SDPA op the installed torch lacks, and any
  attention op that still ran without a formula makes the count an error, never a silent undercount.
- Counting on real tensors runs the model eagerly: at 1024 px and batch 32 the eager (math) attention can run out
  of memory where the compiled model does not. The count runs under FakeTensorMode: shapes only, no memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count, flop_registry

aten = torch.ops.aten

# Every SDPA entry point, by name (looked up on the installed torch; older versions lack some).
SDPA_FORWARD_OPS = (
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_fused_attention_overrideable",
    "_scaled_dot_product_attention_math",
    "_scaled_dot_product_attention_math_for_mps",
)
SDPA_BACKWARD_OPS = (  # all take (grad_out, query, key, value, ...)
    "_scaled_dot_product_flash_attention_for_cpu_backward",
    "_scaled_dot_product_flash_attention_backward",
    "_scaled_dot_product_efficient_attention_backward",
    "_scaled_dot_product_cudnn_attention_backward",
    "_scaled_dot_product_fused_attention_overrideable_backward",
)
# Ops whose FLOPs are attention: every SDPA variant, the lower-level fused kernels, and batched matmuls (attention
# written as q @ k^T and attn @ v).
MATMUL_ATTENTION_OPS = ("bmm", "baddbmm")


def _shape(t) -> tuple[int, ...]:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else tuple(t)


def sdpa_forward_flops(query, key, value) -> int:
    """Q·Kᵀ and P·V, 2 FLOPs per multiply-add: 2·B·Hq·Tq·Tk·(Dqk + Dv).

    Shapes are (..., heads, tokens, dim); grouped-query attention (fewer key/value heads) computes Hq heads.
    """
    q, k, v = _shape(query), _shape(key), _shape(value)
    batch_heads, tq, dqk = math.prod(q[:-2]), q[-2], q[-1]
    tk, dv = k[-2], v[-1]
    if k[-1] != dqk or v[-2] != tk:
        raise ValueError(f"incompatible SDPA shapes q={q} k={k} v={v}")
    return 2 * batch_heads * tq * tk * (dqk + dv)


def sdpa_backward_flops(grad_out, query, key, value) -> int:
    """Recomputed scores (Dqk), dP = dO·Vᵀ (Dv), dV = Pᵀ·dO (Dv), dQ = dS·K (Dqk), dK = dSᵀ·Q (Dqk)."""
    q, k, v = _shape(query), _shape(key), _shape(value)
    batch_heads, tq, dqk = math.prod(q[:-2]), q[-2], q[-1]
    tk, dv = k[-2], v[-1]
    return 2 * batch_heads * tq * tk * (3 * dqk + 2 * dv)


def _forward_formula(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_forward_flops(query, key, value)


def _backward_formula(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flops(grad_out, query, key, value)


def _packets(names) -> list:
    return [getattr(aten, name) for name in names if hasattr(aten, name)]


def conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                        _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """Each requested gradient (input, weight) of a convolution costs the forward's multiply-adds.

    torch's own formula counts the weight gradient of a grouped convolution as if it were dense: `groups` times
    too many (1024x for a depthwise 7x7 layer of ConvNeXt-B, whose training step it counted as 9x its forward).
    The forward count takes its channels from the weight's shape, (C_out, C_in / groups, k...), so it is right
    for any grouping.
    """
    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def missing_formulas(registry: dict | None = None) -> dict:
    """FlopCounterMode custom mapping: our formula for every SDPA op the installed torch has no formula for,
    and the grouped-convolution backward that torch counts wrong."""
    registry = flop_registry if registry is None else registry
    mapping = {op: _forward_formula for op in _packets(SDPA_FORWARD_OPS) if op not in registry}
    mapping.update({op: _backward_formula for op in _packets(SDPA_BACKWARD_OPS) if op not in registry})
    mapping[aten.convolution_backward] = conv_backward_flops
    return mapping


def is_attention_op(name: str) -> bool:
    """An op that computes attention (by name: every SDPA variant, flash/efficient kernels, MHA fast path)."""
    short = name.split(".")[-1] if name.startswith("aten.") else name.split("::")[-1]
    return "attention" in short or "scaled_dot_product" in short


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one call (2 per multiply-add), the attention part, and why the count is not trustworthy (or None)."""

    total: int
    attention: int
    per_op: dict[str, int]
    error: str | None = None


class _LeafOps(TorchDispatchMode):
    """Records the ops that actually executed below FlopCounterMode (after its decompositions)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(str(func._overloadpacket))
        return func(*args, **(kwargs or {}))


def _fake_call(model: torch.nn.Module, x: torch.Tensor, around: Callable[[], object],
               labels: torch.Tensor | None = None):
    """Run `model(x)` on fake copies of its parameters, buffers and input, inside the modes `around()` enters;
    with `labels`, also the cross-entropy loss and its backward (a training step's FLOPs)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    state = {name: fake_mode.from_tensor(t) for name, t in
             [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]}
    fake_x = fake_mode.from_tensor(x)
    with fake_mode, around():
        out = torch.func.functional_call(model, state, (fake_x,), tie_weights=False)
        if labels is not None:
            loss = torch.nn.functional.cross_entropy(out.float(), fake_mode.from_tensor(labels))
            trainable = [t for t in state.values() if t.requires_grad]
            torch.autograd.grad(loss, trainable)


def count_flops(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor | None = None) -> FlopCount:
    """Count one forward of `model` on `x` (with `labels`: forward, loss and backward: a training step) under
    FakeTensorMode, with a formula for every SDPA op.

    `error` is set when an attention op ran that no formula counted (the total would be an undercount).
    """
    from contextlib import ExitStack

    counter = FlopCounterMode(display=False, custom_mapping=missing_formulas())
    leaves = _LeafOps()

    def modes():
        stack = ExitStack()
        stack.enter_context(leaves)  # outer: sees what the counter executes
        stack.enter_context(counter)
        return stack

    _fake_call(model, x, modes, labels)
    per_op = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    counted = {str(op) for op in counter.flop_registry}
    attention = sum(n for op, n in per_op.items()
                    if is_attention_op(op) or op.split(".")[-1] in MATMUL_ATTENTION_OPS)
    uncounted = sorted(op for op in leaves.names if is_attention_op(op) and op not in counted)
    error = f"attention op(s) ran with no FLOP formula: {', '.join(uncounted)}" if uncounted else None
    return FlopCount(int(counter.get_total_flops()), attention, per_op, error)


FLOP_FIELDS = ("flops", "attention_flops", "forward_flops", "flops_error", "flops_convention")


def flop_fields(model: torch.nn.Module, x: torch.Tensor, has_attention: bool, essay: bool,
                labels: torch.Tensor | None = None) -> dict:
    """FLOP fields of one call (with `labels`: a training step, and the forward alone beside it); a failed or
    incomplete count is an error string, never a discarded timing."""
    try:
        forward = count_flops(model, x)
        count = forward if labels is None else count_flops(model, x, labels)
    except Exception as exc:
        return {**dict.fromkeys(FLOP_FIELDS), "flops_error": f"{type(exc).__name__}: {exc}"}
    error = count.error or forward.error
    if error is None and has_attention and not count.attention:
        error = "no attention FLOPs counted for a model with attention"

    def convention(c):
        return c.total - c.attention if essay else c.total

    return {"flops": convention(count), "attention_flops": count.attention, "forward_flops": convention(forward),
            "flops_error": error, "flops_convention": "essay: attention excluded" if essay else "all ops"}
