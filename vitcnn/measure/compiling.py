"""torch.compile for one setting: the compile mode, whether it records CUDA graphs, and what the caches did.

"Uses CUDA graphs" is read from the mode's inductor options (`triton.cudagraphs`), not from its name:
`max-autotune` records CUDA graphs too, and needs the same care as `reduce-overhead` (backend probe on eager,
warm-up past recording, a memory peak that includes the recording).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# (counter group, counter) per cache; torch increments these once per graph looked up.
CACHE_COUNTERS = {
    "fx_graph": ("inductor", ("fxgraph_cache_hit", "fxgraph_cache_miss", "fxgraph_cache_bypass")),
    "aot_autograd": ("aot_autograd", ("autograd_cache_hit", "autograd_cache_miss", "autograd_cache_bypass")),
}


def inductor_options(mode: str) -> dict:
    """The inductor options a compile mode sets ({} for eager and default)."""
    if mode in ("eager", "default"):
        return {}
    from torch._inductor import list_mode_options

    return dict(list_mode_options(mode))


def uses_cuda_graphs(mode: str, device_type: str = "cuda") -> bool:
    """Whether `mode` records and replays CUDA graphs on `device_type` (never on CPU)."""
    return device_type == "cuda" and bool(inductor_options(mode).get("triton.cudagraphs", False))


def compile_model(model: torch.nn.Module, mode: str) -> Callable:
    """The callable to time: the model itself for `eager`, else torch.compile with static shapes."""
    if mode == "eager":
        return model
    return torch.compile(model, mode=None if mode == "default" else mode, dynamic=False)


def cache_counters() -> dict[str, int]:
    """Current FX-graph and AOTAutograd cache counters, flattened (e.g. "fx_graph.fxgraph_cache_hit")."""
    from torch._dynamo.utils import counters

    return {f"{cache}.{name}": int(counters[group][name])
            for cache, (group, names) in CACHE_COUNTERS.items() for name in names}


def cache_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """What the caches did between two snapshots (only the counters that moved)."""
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def cache_verdict(delta: dict[str, int]) -> str:
    """One word for `compile_cache`: "hit" (all lookups hit), "miss" (none did), "partial", or "none" (no lookup:
    caches off or bypassed). An AOTAutograd hit serves the whole graph, so the FX-graph cache is not asked then."""
    hits = sum(n for k, n in delta.items() if k.endswith("_hit"))
    misses = sum(n for k, n in delta.items() if k.endswith("_miss"))
    if hits and not misses:
        return "hit"
    if misses and not hits:
        return "miss"
    if hits and misses:
        return "partial"
    return "none"
