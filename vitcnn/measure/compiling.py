"""torch.compile for one setting: the compile mode, whether it records CUDA graphs, what the caches did, what
Dynamo did (graphs, graph breaks with their reasons, recompiles), and cold and warm compile time.

"Uses CUDA graphs" is read from the mode's inductor options (`triton.cudagraphs`), not from its name:
`max-autotune` records CUDA graphs too, and needs the same care as `reduce-overhead` (backend probe on eager,
warm-up past recording, a memory peak that includes the recording).
"""

from __future__ import annotations

import time
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


GRAPH_BREAK_REASONS = 3  # reasons kept per setting, each shortened to REASON_CHARS
REASON_CHARS = 160


def dynamo_counts() -> dict:
    """Dynamo's cumulative counters now: graphs captured, frames converted (a recompile converts a frame again)
    and graph breaks by reason. Deterministic for a model and a torch version: the gate compares them exactly."""
    from torch._dynamo.utils import counters

    return {"graphs": int(counters["stats"]["unique_graphs"]), "frames": int(counters["frames"]["total"]),
            "breaks": {str(reason): int(n) for reason, n in counters["graph_break"].items()}}


def phase_seconds() -> dict[str, float]:
    """Seconds this process has spent so far in each phase torch.compile times for itself (dynamo's
    compilation_time_metrics: tracing, AOT, inductor's lowering and code generation, guards ...), summed."""
    from torch._dynamo.utils import compilation_time_metrics

    return {name: float(sum(times)) for name, times in compilation_time_metrics.items()}


def phase_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """The phases' seconds between two phase_seconds() snapshots (phases that took no time left out)."""
    return {name: round(t - before.get(name, 0.0), 6) for name, t in after.items() if t - before.get(name, 0.0) > 0}


def graph_fields(before: dict, after: dict) -> dict:
    """What the first (compiling) call did: graphs, graph breaks and their first reasons, shortened."""
    breaks = {reason: n - before["breaks"].get(reason, 0) for reason, n in after["breaks"].items()}
    breaks = {reason: n for reason, n in breaks.items() if n > 0}
    reasons = [" ".join(reason.split())[:REASON_CHARS] for reason in sorted(breaks, key=lambda r: -breaks[r])]
    return {"graphs": after["graphs"] - before["graphs"], "graph_breaks": sum(breaks.values()),
            "graph_break_reasons": reasons[:GRAPH_BREAK_REASONS]}


def recompiles(after_compile: dict, now: dict) -> int:
    """Frames Dynamo converted after the first call: with static shapes every one is a recompile."""
    return now["frames"] - after_compile["frames"]


def _timed(first_call: Callable[[], None], between: Callable[[], None]) -> tuple[float, str]:
    """Seconds of one first call and what the caches did during it; `between` then undoes its side effects."""
    before, start = cache_counters(), time.perf_counter()
    first_call()
    seconds = time.perf_counter() - start
    between()
    return seconds, cache_verdict(cache_delta(before, cache_counters()))


def first_compile(first_call: Callable[[], object], eager: bool) -> tuple[object, float, dict]:
    """The model's own first call (its compile, unless eager): its output, its seconds, and the run file's fields
    for it: compile time, what the caches did (`compile_cache`), what Dynamo did (graphs, breaks, reasons)."""
    cache_before, dynamo_before = cache_counters(), dynamo_counts()
    start = time.perf_counter()
    out = first_call()
    seconds = time.perf_counter() - start
    delta = cache_delta(cache_before, cache_counters())
    if eager:
        return out, seconds, {"compile_time_s": None, "compile_cache": "n/a", "compile_cache_counters": delta,
                              "graphs": None, "graph_breaks": None, "graph_break_reasons": None}
    return out, seconds, {"compile_time_s": seconds, "compile_cache": cache_verdict(delta),
                          "compile_cache_counters": delta, **graph_fields(dynamo_before, dynamo_counts())}


def forget_compiled() -> None:
    """Dynamo reset and the in-memory compiled-code caches cleared: the next first call compiles as a fresh
    process would, served only by the on-disk caches."""
    from torch._inductor.utils import clear_caches

    torch._dynamo.reset()
    clear_caches()


def recompile(first_call: Callable[[], None], between: Callable[[], None] = lambda: None) -> tuple[float, str]:
    """The first call once more as a second process pays it (forget_compiled, then served from the on-disk
    caches): (seconds, cache verdict). The model stays compiled."""
    forget_compiled()
    return _timed(first_call, between)


def cold_compile(first_call: Callable[[], None], between: Callable[[], None] = lambda: None) -> tuple[float, str]:
    """The first call in a fresh, empty inductor/Triton cache directory (torch's own `fresh_cache`, which also clears
    the in-memory compiled-code caches), as a user with no cache pays it: (seconds, cache verdict, `miss` when
    honest). The directory is deleted afterwards and Dynamo reset: the caller compiles its model again."""
    from torch._inductor.utils import fresh_cache

    with fresh_cache():
        torch._dynamo.reset()
        cold = _timed(first_call, between)
    torch._dynamo.reset()
    return cold


def compile_extras(compile_s: float, compile_cache: str, first_call: Callable[[], None],
                   between: Callable[[], None] = lambda: None, before_warm: Callable[[], None] = lambda: None
                   ) -> dict:
    """Cold and warm compile time, after the model's own first compile (`compile_s`, with the user's caches).

    Cold: when that compile missed every cache (an empty user cache, as on a first run) it was a cold compile and
    is the figure; otherwise `cold_compile` in a fresh directory. Warm: `recompile` from the user's caches, now
    filled (`compile_warm_cache` says `hit` when honest). One full compile on a first run instead of two, and the
    warm recompile is the model the caller times from then on; `before_warm` runs just before it (a CUDA memory
    baseline must precede the call that records CUDA graphs). `between` undoes the cold call's side effects; the
    warm call's stay, as the model's own first call's would (a training step's gradients, for its optimizer)."""
    cold, cold_cache = (compile_s, "miss") if compile_cache == "miss" else cold_compile(first_call, between)
    before_warm()
    warm, warm_cache = recompile(first_call)
    return {"compile_cold_s": cold, "compile_cold_cache": cold_cache, "compile_warm_s": warm,
            "compile_warm_cache": warm_cache}


NOT_MEASURED = dict.fromkeys(("compile_cold_s", "compile_cold_cache", "compile_warm_s", "compile_warm_cache"))
