"""The SDPA backend a setting asks for, the one that actually ran, and keeping the two from being confused.

Traps:
- `sdpa_kernel` is trace-time context: inductor's on-disk FX-graph and AOTAutograd caches do not key on it, so a
  `math` setting could load the artifact compiled for `auto` and silently run flash. Settings with a forced
  backend therefore compile under their own cache key (`torch.compiler.config.cache_key_tag`), or, on a torch
  without that key, with both caches off.
- The profiler is the only witness of which kernel ran. Seeing nothing is "unknown", never a silent "math"; a
  setting whose observed backend differs from the requested one is an error naming both.
- CUDA profiler activities start CUPTI, which can slow the rest of the process: the probe records CPU activities
  only (the aten SDPA ops are CPU-side events) and runs after timing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext

import torch

# Profiler event name (aten::<name>) -> the backend it reveals.
FUSED_OPS = {
    "_scaled_dot_product_flash_attention_for_cpu": "flash_cpu",
    "_scaled_dot_product_flash_attention": "flash",
    "_scaled_dot_product_efficient_attention": "efficient",
    "_scaled_dot_product_cudnn_attention": "cudnn",
    "_scaled_dot_product_fused_attention_overrideable": "overrideable",
    "_scaled_dot_product_attention_math": "math",
}
# Batched matmuls with no fused SDPA op: attention computed as matmuls (eager math, or math decomposed by inductor).
MATMUL_OPS = ("bmm", "baddbmm")
UNKNOWN = "unknown"

# What each requested backend may be observed as (flash on a CPU is the CPU flash kernel).
ACCEPTED = {"math": {"math"}, "flash": {"flash", "flash_cpu"}, "efficient": {"efficient"}, "cudnn": {"cudnn"}}


class BackendMismatch(RuntimeError):
    """The SDPA kernel that ran is not the one the setting asked for: its timing belongs to another setting."""


def sdpa_context(backend: str):
    """Restrict SDPA to one backend ("auto" and "none" leave the choice to PyTorch)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    choices = {"math": SDPBackend.MATH, "flash": SDPBackend.FLASH_ATTENTION,
               "efficient": SDPBackend.EFFICIENT_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}
    return sdpa_kernel(choices[backend]) if backend in choices else nullcontext()


def has_cache_key_tag() -> bool:
    """Whether this torch lets a caller add its own part to every compile-cache key (torch >= 2.7)."""
    config = getattr(getattr(torch, "compiler", None), "config", None)
    return config is not None and hasattr(config, "cache_key_tag")


@contextmanager
def isolated_compile_cache(backend: str, use_tag: bool | None = None) -> Iterator[str]:
    """Compile caches that a forced backend cannot share with another: yields how ("shared", "tagged", "off").

    `auto`/`none` keep the default caches. A forced backend adds `sdpa=<backend>` to the cache key where torch
    supports a key tag, so warm-cache reruns stay cheap; otherwise the FX-graph and AOTAutograd caches are off.
    """
    if backend in ("auto", "none"):
        yield "shared"
        return
    use_tag = has_cache_key_tag() if use_tag is None else use_tag
    with ExitStack() as stack:
        if use_tag:
            tag = torch.compiler.config.cache_key_tag
            stack.enter_context(torch.compiler.config.patch(cache_key_tag=f"{tag}|vitcnn-sdpa={backend}"))
            yield "tagged"
        else:
            stack.enter_context(torch._inductor.config.patch(fx_graph_cache=False))
            stack.enter_context(torch._functorch.config.patch(enable_autograd_cache=False))
            yield "off"


def backends_in(event_names) -> str:
    """The backend(s) a set of profiler event names reveals: fused ops by name, else matmuls mean math, else
    unknown (no attention op seen at all, e.g. a CUDA-graph replay)."""
    names = {name.split("::")[-1] for name in event_names}
    seen = {FUSED_OPS[name] for name in names if name in FUSED_OPS}
    if seen:
        return "+".join(sorted(seen))
    return "math" if names & set(MATMUL_OPS) else UNKNOWN


def backends_seen(call: Callable[[], object]) -> str:
    """Which SDPA implementation one call ran, read from CPU-side profiler events (no CUDA activities: CUPTI)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        call()
    return backends_in(event.name for event in prof.events())


def check_backend(requested: str, observed: str) -> None:
    """Raise BackendMismatch unless `observed` is what `requested` must run (any backend satisfies `auto`)."""
    if requested in ("auto", "none"):
        return
    if observed not in ACCEPTED[requested]:
        raise BackendMismatch(f"requested SDPA backend {requested!r}, but {observed!r} ran")
