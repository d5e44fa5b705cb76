"""Run one Setting: build, compile, check against eager, time synchronised calls, count FLOPs, read memory.

Order matters for honest numbers:
1. build, cast and move the model and input; weights bytes come from the parameters themselves;
2. eager reference output and the FLOP count (FlopCounterMode on the eager model, so SDPA is counted);
3. first compiled call = compile time; its output must match eager within the precision's tolerance;
4. reset the CUDA peak-memory counters, so compile-time autotuning buffers and the eager pass do not count,
   then warm up (this is where CUDA graphs get recorded) and time synchronised calls;
5. activation peak = peak allocated during warm-up and timing minus what was allocated before (weights, input).
Out-of-memory anywhere is a result (status "oom"), and everything is freed before the next setting.
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
import traceback
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode

from vitcnn import models, peaks
from vitcnn.precision import CHECK_TOLERANCE, DTYPES, precision_flags
from vitcnn.settings import Setting
from vitcnn.timing import plain_timer, synchronize

# pytest-benchmark (or any timer): given a synchronised call and a number of rounds, return seconds per call.
Timer = Callable[[Callable[[], None], int], list[float]]

SDPA_OPS = {
    "_scaled_dot_product_flash_attention_for_cpu": "flash_cpu",
    "_scaled_dot_product_flash_attention": "flash",
    "_scaled_dot_product_efficient_attention": "efficient",
    "_scaled_dot_product_cudnn_attention": "cudnn",
    "_scaled_dot_product_fused_attention_overrideable": "overrideable",
}
ATTENTION_FLOP_OPS = ("bmm", "baddbmm", *SDPA_OPS)


@dataclass(frozen=True)
class MeasureOptions:
    """How long to warm up and time one setting."""

    target_seconds: float = 1.0  # timed rounds aim for about this much total time
    min_rounds: int = 10
    max_rounds: int = 200
    warmup_calls: int = 3  # at least this many calls after compiling (CUDA-graph recording needs >= 2)
    warmup_seconds: float = 1.0  # CPU runs still speed up over their first ~0.5 s; GPU clocks ramp too
    inference_mode: bool = True  # False keeps autograd state: the gate's planted memory regression


@dataclass
class Outcome:
    """The result of one setting: status ("ok", "oom", "error"), a reason when not ok, and the numbers."""

    status: str
    reason: str | None = None
    info: dict = field(default_factory=dict)
    samples: list[float] = field(default_factory=list)


class CompiledMismatch(RuntimeError):
    """The compiled model's output is not finite or not close to eager: its timing would mean nothing."""


def is_oom(exc: BaseException) -> bool:
    """CUDA OOM, or the CPU allocator refusing (which torch reports as a plain RuntimeError)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text.lower() or "can't allocate memory" in text or "not enough memory" in text
    )


def sdpa_context(backend: str):
    """Restrict SDPA to one backend ("auto" and "none" leave the choice to PyTorch)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    choices = {"math": SDPBackend.MATH, "flash": SDPBackend.FLASH_ATTENTION,
               "efficient": SDPBackend.EFFICIENT_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}
    return sdpa_kernel(choices[backend]) if backend in choices else nullcontext()


def free_memory() -> None:
    """Drop compiled graphs and cached blocks so the next setting starts clean."""
    torch._dynamo.reset()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def count_flops(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(total FLOPs, attention FLOPs) of one eager forward, SDPA included (2 FLOPs per multiply-add)."""
    with FlopCounterMode(display=False) as counter:
        model(x)
    per_op = counter.get_flop_counts().get("Global", {})
    attention = sum(n for op, n in per_op.items() if str(op).split(".")[1] in ATTENTION_FLOP_OPS)
    return counter.get_total_flops(), attention


def sdpa_backends_seen(call: Callable[[], object]) -> str:
    """Which SDPA implementation one call ran, read from the profiler's op names.

    A model with attention but no fused SDPA op ran the math path (in compiled code: decomposed matmuls).
    """
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        call()
    seen = set()
    for event in prof.events():
        name = event.name.split("::")[-1]
        if name in SDPA_OPS:
            seen.add(SDPA_OPS[name])
        elif name == "_scaled_dot_product_attention_math":
            seen.add("math")
    return "+".join(sorted(seen)) if seen else "math"


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """max |out - ref| / max |ref|, in fp32; inf if anything is not finite."""
    out, ref = out.float(), ref.float()
    if not torch.isfinite(out).all():
        return math.inf
    return ((out - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()


def _weights_bytes(model: torch.nn.Module) -> int:
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def _prepare(setting: Setting, device: torch.device, build: Callable[..., torch.nn.Module]):
    dtype = DTYPES[setting.precision]
    layout = torch.channels_last if setting.layout == "channels_last" else torch.contiguous_format
    model = build(setting.model, setting.resolution).to(device=device, dtype=dtype, memory_format=layout)
    x = torch.randn(setting.batch, 3, setting.resolution, setting.resolution, device=device, dtype=dtype)
    return model, x.contiguous(memory_format=layout)


def _compile(model: torch.nn.Module, mode: str) -> Callable:
    if mode == "eager":
        return model
    return torch.compile(model, mode=None if mode == "default" else mode, dynamic=False)


def _fx_cache_counts() -> tuple[int, int]:
    counters = torch._dynamo.utils.counters["inductor"]
    return counters["fxgraph_cache_hit"], counters["fxgraph_cache_miss"]


def _measure(setting: Setting, device: torch.device, timer: Timer, options: MeasureOptions,
             build: Callable[..., torch.nn.Module]) -> tuple[dict, list[float]]:
    spec = models.spec(setting.model)
    grad_mode = torch.inference_mode() if options.inference_mode else nullcontext()
    with precision_flags(setting.precision) as flags, sdpa_context(setting.sdpa), grad_mode:
        model, x = _prepare(setting, device, build)
        info: dict = {
            "setting": setting.as_dict(), "setting_id": setting.id, "status": "ok",
            "model_family": spec.family, "device": device.type, "precision_flags": flags,
            "inference_mode": options.inference_mode,
            "params": sum(p.numel() for p in model.parameters()), "weights_bytes": _weights_bytes(model),
        }
        reference = model(x)
        try:
            info["flops"], info["attention_flops"] = count_flops(model, x)
            info["flops_error"] = None
            if spec.has_attention and not info["attention_flops"]:
                info["flops_error"] = "no attention FLOPs counted for a model with attention"
        except Exception as exc:  # a failed count must not discard a valid timing
            info["flops"], info["attention_flops"] = None, None
            info["flops_error"] = f"{type(exc).__name__}: {exc}"

        compiled = _compile(model, setting.compile_mode)
        hits, misses = _fx_cache_counts()
        synchronize(device)
        start = time.perf_counter()
        out = compiled(x)
        synchronize(device)
        compile_s = time.perf_counter() - start
        new_hits, new_misses = _fx_cache_counts()
        eager = setting.compile_mode == "eager"
        info["compile_time_s"] = None if eager else compile_s
        info["compile_cache"] = "n/a" if eager else (
            "miss" if new_misses > misses else "hit" if new_hits > hits else "none")

        error = 0.0 if eager else relative_error(out, reference)
        tolerance = CHECK_TOLERANCE[setting.precision]
        info["check_max_rel_err"], info["check_tolerance"] = error, tolerance
        del out, reference
        if not error <= tolerance:
            raise CompiledMismatch(
                f"compiled output differs from eager: max relative error {error:.3g} > tolerance {tolerance:g} "
                f"({setting.precision})")

        def call() -> None:
            compiled(x)
            synchronize(device)

        backend_probe = model if setting.compile_mode == "reduce-overhead" else compiled
        info["sdpa_backend_used"] = (
            sdpa_backends_seen(lambda: (backend_probe(x), synchronize(device))) if spec.has_attention else "none")
        info["sdpa_backend_source"] = "eager" if backend_probe is model and not eager else "timed model"

        if device.type == "cuda":
            synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            allocated_before = torch.cuda.memory_allocated(device)
        warmup = []
        while len(warmup) < options.warmup_calls or sum(warmup) < options.warmup_seconds:
            warmup += plain_timer(call, 1)
            if len(warmup) >= options.max_rounds:
                break
        per_call = statistics.median(warmup[-options.warmup_calls:])
        rounds = min(options.max_rounds, max(options.min_rounds, math.ceil(options.target_seconds / per_call)))
        info["warmup_rounds"] = len(warmup)
        samples = timer(call, rounds)
        info["host_load_1m"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        if device.type == "cuda":
            info["activation_peak_bytes"] = torch.cuda.max_memory_allocated(device) - allocated_before
            info["reserved_peak_bytes"] = torch.cuda.max_memory_reserved(device)
        else:
            info["activation_peak_bytes"] = info["reserved_peak_bytes"] = None
        return info, samples


def _derived(setting: Setting, device: torch.device, info: dict, samples: list[float]) -> dict:
    """Throughput, achieved TFLOP/s and MFU against the spec and the measured matmul peak.

    Runs after the model is freed; a matmul peak that cannot be measured leaves MFU empty, never the timing.
    """
    median = statistics.median(samples) if samples else None
    tflops = info["flops"] / median / 1e12 if median and info["flops"] else None
    gpu_name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    spec_peak = peaks.spec_tflops(gpu_name, setting.precision)
    try:
        matmul_peak, matmul_error = peaks.measured_matmul_tflops(device, setting.precision), None
    except Exception as exc:
        matmul_peak, matmul_error = None, f"{type(exc).__name__}: {exc}"
        traceback.clear_frames(exc.__traceback__)
        free_memory()
    return {
        "peak_tflops_matmul_error": matmul_error,
        "median_s": median,
        "images_per_s": setting.batch / median if median else None,
        "tflops_per_s": tflops,
        "peak_tflops_spec": spec_peak,
        "mfu_spec": tflops / spec_peak if tflops and spec_peak else None,
        "peak_tflops_matmul": matmul_peak,
        "mfu_matmul": tflops / matmul_peak if tflops and matmul_peak else None,
    }


def measure(setting: Setting, device: torch.device | str, timer: Timer = plain_timer,
            options: MeasureOptions = MeasureOptions(),
            build: Callable[..., torch.nn.Module] = models.build) -> Outcome:
    """Measure one setting; never raises for OOM or a failing model: the Outcome says what happened."""
    device = torch.device(device)
    free_memory()
    try:
        info, samples = _measure(setting, device, timer, options, build)
    except Exception as exc:
        status = "oom" if is_oom(exc) else "error"
        reason = f"{type(exc).__name__}: {exc}".strip()
        traceback.clear_frames(exc.__traceback__)  # frames hold the model and activations alive
        return Outcome(status, reason[:2000])
    finally:
        free_memory()
    info.update(_derived(setting, device, info, samples))
    return Outcome("ok", None, info, samples)
