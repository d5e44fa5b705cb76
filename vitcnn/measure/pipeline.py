"""Run one Setting: build, count FLOPs, compile, check, time synchronised calls, probe the kernel, read memory.

A call is one forward (task "infer") or one training step (task "train", training.py: forward, loss, backward,
optimizer step); every stage below is the same for both.

Order matters for honest numbers (docs/measuring.md says why each step is there):
1. build, cast and move the model and input; every residual gain awake (models.wake_gains);
2. FLOPs under FakeTensorMode (no memory; every SDPA op has a formula, flops.py); references on a 1-image slice:
   eager in the setting's dtype and SDPA context, and fp32 with math attention (reference.py);
3. the first compiled call = compile time, with caches that a forced SDPA backend cannot share (sdpa.py); its
   output must match both references (training: loss and the stem's gradient of the first step, before its
   optimizer step); where asked for, then the cold compile (that first call itself when it missed every cache,
   else one in an empty cache directory) and the warm one, whose recompiled model is timed (compiling.compile_extras);
4. reset the CUDA peak-memory counters (before the first call for CUDA-graph modes, so recording counts), then
   warm up for a time and time synchronised calls with the cyclic GC paused;
5. after timing: device time and gpu_busy (CUDA), the CPU memory peak of one more call (memory.py: the profiler's
   allocator events), where asked for the eager twin (twin.py: speedup over eager, memory compression), then the
   SDPA backend probe (CPU profiler activities only; eager for CUDA-graph modes): another backend fails it.
Out-of-memory anywhere is a result (status "oom"); a sticky CUDA error is marked fatal; everything is freed.
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack, nullcontext

import torch

from vitcnn.measure import compiling, host, memory, peaks, reference, sdpa, training, twin
from vitcnn.measure.failures import failure
from vitcnn.measure.flops import FLOP_FIELDS, flop_fields
from vitcnn.measure.options import CONVENTIONS, MeasureOptions
from vitcnn.measure.precision import DTYPES, precision_flags
from vitcnn.measure.timing import device_time_fields, gc_paused, plain_timer, synchronize, warm_up
from vitcnn.result import Result
from vitcnn.settings import Setting
from vitcnn.zoo import models

# pytest-benchmark (or any timer): given a synchronised call and a number of rounds, return seconds per call.
Timer = Callable[[Callable[[], None], int], list[float]]


def free_memory() -> None:
    """Drop compiled graphs and cached blocks so the next setting starts clean."""
    torch._dynamo.reset()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _weights_bytes(model: torch.nn.Module) -> int:
    return training.tensor_bytes([*model.parameters(), *model.buffers()])


def _prepare(setting: Setting, device: torch.device, build: Callable[..., torch.nn.Module]):
    """The model and input, moved and cast: to the setting's dtype for inference, fp32 (master weights, autocast
    does the rest) for training."""
    dtype = DTYPES[setting.precision] if setting.task == "infer" else torch.float32
    layout = torch.channels_last if setting.layout == "channels_last" else torch.contiguous_format
    model = build(setting.model, setting.resolution).to(device=device, dtype=dtype, memory_format=layout)
    x = torch.randn(setting.batch, 3, setting.resolution, setting.resolution, device=device, dtype=dtype)
    return model, x.contiguous(memory_format=layout)


class Prepared:
    """A setting built, FLOP-counted, compiled, checked and warmed up, with its contexts (precision flags, SDPA
    backend, compile-cache isolation, inference mode) held open: the stages after preparing, one call each.

    `measure` times all its rounds in one go; `vitcnn ab` times short blocks between another process's blocks.
    Both go through the same stages: `prepare` -> `time_rounds`/`time_block` -> `finish` (then `close`).
    """

    def __init__(self, setting: Setting, device: torch.device, options: MeasureOptions,
                 build: Callable[..., torch.nn.Module]) -> None:
        self.setting, self.device, self.options = setting, device, options
        self.samples: list[float] = []
        self.host = host.Recorder(device)  # the host state of every timed block
        self._contexts = ExitStack()
        try:
            self._prepare(build)
        except BaseException:
            self.close()
            raise

    def _prepare(self, build: Callable[..., torch.nn.Module]) -> None:
        setting, device, options = self.setting, self.device, self.options
        spec = models.spec(setting.model)
        if options.conventions not in CONVENTIONS:
            raise ValueError(f"unknown conventions {options.conventions!r}; choose from {', '.join(CONVENTIONS)}")
        essay = options.conventions == "essay"
        eager = setting.compile_mode == "eager"
        self.graphs = graphs = compiling.uses_cuda_graphs(setting.compile_mode, device.type)
        enter = self._contexts.enter_context
        flags = enter(precision_flags(setting.precision, cudnn_tf32_in_fp32=essay))
        enter(sdpa.sdpa_context(setting.sdpa))
        isolation = enter(sdpa.isolated_compile_cache(setting.sdpa))
        train = setting.task == "train"
        inference_mode = options.inference_mode and not train
        enter(torch.inference_mode() if inference_mode else nullcontext())
        if options.seed is not None:
            torch.manual_seed(options.seed)
        self.model, self.x = model, x = _prepare(setting, device, build)
        labels = None
        if train:
            model.train()
            labels = training.random_labels(model, x)
        self.info = info = {
            "setting": setting.as_dict(), "setting_id": setting.id, "status": "ok",
            "model_family": spec.family, "device": device.type, "precision_flags": flags,
            "inference_mode": inference_mode, "conventions": options.conventions, "seed": options.seed,
            "cuda_graphs": graphs, "compile_cache_isolation": isolation,
            "params": sum(p.numel() for p in model.parameters()), "weights_bytes": _weights_bytes(model),
        }
        if options.checks:
            info.update(flop_fields(model, x, spec.has_attention, essay, labels) if options.count_flops
                        else dict.fromkeys(FLOP_FIELDS))  # not counted: empty, as a failed count's numbers
            refs = (training.references(model, x, labels, setting.precision) if train
                    else reference.references(model, x))

        self.compiled = compiled = compiling.compile_model(model, setting.compile_mode)
        self.step = step = training.TrainStep(compiled, model, x, labels, setting.precision) if train else None

        def first_call():
            out = step.loss_and_gradient() if train else compiled(x)  # training: compiles forward and backward
            synchronize(device)
            return out

        extras = options.compile_times and not eager
        if extras:  # nothing compiled in memory may serve this compile: if it misses on disk, it is the cold one
            compiling.forget_compiled()
        if device.type == "cuda" and not extras:  # else before the warm recompile: the model timed from then on
            self._cuda_memory_baseline()
        synchronize(device)
        out, compile_s, fields = compiling.first_compile(first_call, eager)
        info.update(fields)
        if options.checks:
            info.update(reference.check(out, refs, setting.precision))
            del refs
        del out
        if extras:
            zero_grad = lambda: model.zero_grad(set_to_none=True)  # noqa: E731
            zero_grad()
            before_warm = self._cuda_memory_baseline if device.type == "cuda" else lambda: None
            info.update(compiling.compile_extras(compile_s, info["compile_cache"], first_call, zero_grad, before_warm))
        else:
            info.update(compiling.NOT_MEASURED)
        self.dynamo_after_compile = None if eager else compiling.dynamo_counts()
        if train:  # the first step's optimizer step creates the optimizer state: held from here on
            step.apply()
            info["gradient_bytes"] = training.gradient_bytes(model)
            info["optimizer"] = type(step.optimizer).__name__ + (
                " (fused)" if step.optimizer.defaults.get("fused") else " (foreach)")
            info["optimizer_state_bytes"] = training.optimizer_state_bytes(step.optimizer)
            if device.type == "cuda" and graphs:
                self.allocated_before += info["optimizer_state_bytes"]

        if device.type == "cuda" and not graphs:  # compile-time autotuning buffers are not activations
            self._cuda_memory_baseline()
        warmup_calls = max(options.warmup_calls, 3) if graphs else options.warmup_calls
        with gc_paused():
            warmup = warm_up(self.call, warmup_calls, options.warmup_seconds)
        self.per_call_s = statistics.median(warmup[-warmup_calls:])
        info["warmup_rounds"] = len(warmup)

    def _cuda_memory_baseline(self) -> None:
        """Peak statistics reset and the allocation noted, before the call that records CUDA graphs (if any)."""
        synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.allocated_before = torch.cuda.memory_allocated(self.device)

    def enqueue(self) -> None:
        """One call of the compiled model (or one training step), not synchronised."""
        if self.step is not None:
            self.step()
        else:
            self.compiled(self.x)

    def call(self) -> None:
        """One synchronised call: what every sample times."""
        self.enqueue()
        synchronize(self.device)

    def held_bytes(self) -> int:
        """What stays allocated between calls: weights, the batch (and labels), the optimizer state."""
        held = self.info["weights_bytes"] + training.tensor_bytes([self.x])
        if self.step is not None:
            held += training.tensor_bytes([self.step.labels]) + self.info["optimizer_state_bytes"]
        return held

    def rounds(self) -> int:
        """How many calls `measure` times: about `target_seconds`, within [min_rounds, max_rounds]."""
        options = self.options
        return min(options.max_rounds, max(options.min_rounds, math.ceil(options.target_seconds / self.per_call_s)))

    def time_rounds(self, timer: Timer, rounds: int) -> list[float]:
        """Time `rounds` calls with `timer` (pytest-benchmark's, or plain), the cyclic GC paused; kept in samples.
        One untimed call first: pausing the GC collects once, and the first call after it refills evicted caches."""
        with gc_paused():
            self.call()
            self.host.start()
            samples = timer(self.call, rounds)
            self.host.stop(len(samples))
        self.samples += samples
        return samples

    def time_block(self, calls: int, untimed: int = 1) -> list[float]:
        """One block of `calls` timed calls after `untimed` calls that refill caches another process evicted."""
        with gc_paused():
            for _ in range(untimed):
                self.call()
            self.host.start()
            samples = plain_timer(self.call, calls)
            self.host.stop(calls)
        self.samples += samples
        return samples

    def finish(self) -> dict:
        """After timing, never before: memory peaks, device time and the SDPA backend probe; returns the info."""
        info, device = self.info, self.device
        info["host_load_1m"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        info.update(self.host.fields())
        # before the calls below: recompiles during warm-up and timing (should be 0 with static shapes)
        info["recompiles"] = (None if self.dynamo_after_compile is None
                              else compiling.recompiles(self.dynamo_after_compile, compiling.dynamo_counts()))
        info.update(self._memory())
        info.update(device_time_fields(self.enqueue, device, self.samples, self.options.device_time_rounds))
        info.update(self._eager_twin())

        # The probe must not change what was timed. CUDA-graph replays hide the ops.
        probe, probe_x = (self.model, self.x[:reference.SLICE]) if self.graphs else (self.compiled, self.x)
        has_attention = models.spec(self.setting.model).has_attention

        def probed_call():
            if self.step is not None:  # the forward under the step's autocast: the kernels the step ran
                self.step.loss(probe, probe_x, self.step.labels[:len(probe_x)])
            else:
                probe(probe_x)
            synchronize(device)

        info["sdpa_backend_used"] = sdpa.backends_seen(probed_call) if has_attention else "none"
        info["sdpa_backend_source"] = "eager" if self.graphs else "timed model"
        sdpa.check_backend(self.setting.sdpa, info["sdpa_backend_used"])
        return info

    def _eager_twin(self) -> dict:
        """Speedup over eager and memory compression (twin.py), after the compiled memory peak was read: the
        twin's calls must not count in it."""
        if not self.options.eager_twin or self.setting.compile_mode == "eager":
            return twin.NOT_MEASURED
        eager = self.step.eager_twin() if self.step is not None else (lambda: self.model(self.x))
        device = self.device

        def eager_call():
            eager()
            synchronize(device)

        compiled_s = statistics.median(self.samples) if self.samples else self.per_call_s
        return twin.measure_twin(self.call, eager_call, compiled_s, self.info["activation_peak_bytes"], device)

    def _memory(self) -> dict:
        """Memory of a call: its activation peak (the most it allocates beyond what is held between calls) and
        the total peak, in bytes.

        A training step's activation peak includes its gradients: they are created while the saved activations are
        freed, so one peak cannot be split between them (subtracting the gradients understated a ViT-B/16 step's
        activations 20-fold: its peak falls at the end of backward, where the gradients are most of it).
        CUDA: the allocator's peak counters over warm-up and timing. CPU: one more call, watched through the
        profiler's allocator events (memory.py).
        """
        device = self.device
        if device.type == "cuda":
            above_held = torch.cuda.max_memory_allocated(device) - self.allocated_before
            total, reserved = torch.cuda.max_memory_allocated(device), torch.cuda.max_memory_reserved(device)
            holders = self._cuda_holders()
        else:
            above_held, holders = memory.cpu_peak(self.call)
            total, reserved = self.held_bytes() + above_held, None
        return {"activation_peak_bytes": above_held, "total_peak_bytes": total,
                "reserved_peak_bytes": reserved, "activation_peak_holders": holders,
                "memory_source": "cuda allocator" if device.type == "cuda"
                else "profiler allocator events (one call after timing)"}

    def _cuda_holders(self) -> list[dict] | None:
        """Who holds a CUDA call's peak: one more call under the profiler (None with CUDA graphs, whose replays
        allocate nothing, or if the profiler fails: the peak itself comes from the allocator's counters)."""
        if self.graphs:
            return None
        try:
            return memory.holders_at_peak(memory.allocator_trace(self.call, "cuda"))
        except Exception:  # attribution is a diagnosis; never lose the setting over it
            return None

    def close(self) -> None:
        """Leave the setting's contexts and drop the model, input and compiled graph (free_memory does the rest)."""
        self.model = self.x = self.compiled = self.step = None
        self.host.close()
        self._contexts.close()


def prepare(setting: Setting, device: torch.device | str, options: MeasureOptions = MeasureOptions(),
            build: Callable[..., torch.nn.Module] = models.build) -> Prepared:
    """Build, count, compile, check and warm up `setting`; raises on OOM or failure (see `failure`)."""
    return Prepared(setting, torch.device(device), options, build)


def _measure(setting: Setting, device: torch.device, timer: Timer, options: MeasureOptions,
             build: Callable[..., torch.nn.Module]) -> tuple[dict, list[float]]:
    prepared = prepare(setting, device, options, build)
    try:
        samples = prepared.time_rounds(timer, prepared.rounds())
        return prepared.finish(), samples
    finally:
        prepared.close()


def _derived(setting: Setting, device: torch.device, info: dict, samples: list[float]) -> dict:
    """Throughput, achieved TFLOP/s and MFU against the spec and the measured matmul peak.

    Runs after the model is freed; a matmul peak that cannot be measured leaves MFU empty, never the timing.
    """
    median = statistics.median(samples) if samples else None
    # An incomplete FLOP count (flops_error) would make TFLOP/s and MFU an undercount: leave them empty.
    tflops = info["flops"] / median / 1e12 if median and info["flops"] and not info["flops_error"] else None
    spec_peak = None
    if device.type == "cuda":
        sm_count = torch.cuda.get_device_properties(device).multi_processor_count
        spec_peak = peaks.spec_tflops(torch.cuda.get_device_name(device), setting.precision, sm_count)
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
            build: Callable[..., torch.nn.Module] = models.build) -> Result:
    """Measure one setting; never raises for OOM or a failing model: the Result says what happened."""
    device = torch.device(device)
    start = time.perf_counter()
    free_memory()
    failed: Result | None = None
    try:
        info, samples = _measure(setting, device, timer, options, build)
    except Exception as exc:
        failed = failure(exc, setting)
    try:
        free_memory()
    except Exception as exc:  # after a sticky CUDA error even freeing fails: report that, never raise
        if failed is None or not failed.fatal:
            failed = failure(exc, setting)
    if failed is not None:
        return failed
    return completed(setting, device, info, samples, wall_s=time.perf_counter() - start)


def completed(setting: Setting, device: torch.device, info: dict, samples: list[float],
              wall_s: float | None = None) -> Result:
    """The Result of a setting that ran: its info with the derived numbers (run after the model is freed) and its
    whole cost in seconds (what `vitcnn plan` adds up; None where its blocks were spread over an A/B session)."""
    info.update(_derived(setting, device, info, samples), setting_wall_s=wall_s)
    return Result(setting, "ok", None, samples, info)
