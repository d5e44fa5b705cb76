"""What would be wrong with a run: the numbers to distrust before reading any table of it.

A first run on a new machine (or a new torch) can produce numbers that look fine and are not: a kernel other than
the one requested, a GPU that idles between launches, an MFU above the datasheet, a memory peak of nothing, a
compiled artifact reused from another setting, calls that ran at two speeds, a "cold" compile that hit a cache.
Each check below names one such symptom, the settings that show it, and why it matters; `python -m vitcnn check
RUN.json` prints them and exits 1 if any fired.
"""

from __future__ import annotations

from dataclasses import dataclass

from vitcnn.gate.metrics import GRAPH_BREAKS, RECOMPILES
from vitcnn.runfile import Result, Run
from vitcnn.settings import HALF_PRECISIONS, NO_SDPA

FUSED_CUDA_SDPA = {"flash", "cudnn", "efficient"}  # what "auto" should reach on a GPU in half precision
MIN_GPU_BUSY = 0.5  # at batch >= BUSY_BATCH the GPU should be busy most of a call's wall time
BUSY_BATCH = 32
MIN_HALF_MFU = 0.05  # a compiled backbone in bf16 at batch >= BUSY_BATCH below 5% of the datasheet: something is off
MAX_SPREAD = 0.2  # IQR / median of the calls: beyond this the calls ran in regimes (clocks, host), not around one speed


@dataclass(frozen=True)
class Finding:
    """One symptom in one setting (or the run as a whole, `setting_id` None)."""

    check: str
    setting_id: str | None
    detail: str


def _kernel(result: Result, device: str) -> str | None:
    if result.setting.sdpa == NO_SDPA:
        return None
    used, requested = result.get("sdpa_backend_used"), result.setting.sdpa
    if used in (None, "unknown"):
        return f"attention kernel not identified ({used!r}): its timing cannot be attributed to a kernel"
    if requested == "auto":
        if device == "cuda" and result.setting.precision in HALF_PRECISIONS and used not in FUSED_CUDA_SDPA:
            return f"auto reached {used!r}, not a fused kernel, in {result.setting.precision}"
        return None
    if used.removesuffix("_cpu") != requested:
        return f"requested {requested!r}, ran {used!r}"
    return None


def _gpu_busy(result: Result) -> str | None:
    busy = result.get("gpu_busy")
    if result.setting.batch >= BUSY_BATCH and busy is not None and busy < MIN_GPU_BUSY:
        return f"gpu_busy {busy:.2f} at batch {result.setting.batch}: the host, not the GPU, sets this time"
    if busy is not None and busy > 1.05:
        return f"gpu_busy {busy:.2f} > 1: device time longer than wall time, a timer is wrong"
    return None


def _mfu(result: Result) -> str | None:
    mfu = result.mfu("spec")
    if mfu is None:
        return None
    if mfu > 1:
        return f"MFU {mfu:.0%} of the datasheet: FLOPs overcounted or the call not timed to its end"
    if result.setting.precision in HALF_PRECISIONS and result.setting.batch >= BUSY_BATCH and mfu < MIN_HALF_MFU:
        return f"MFU {mfu:.1%} in {result.setting.precision} at batch {result.setting.batch}: far below any " \
               "compiled backbone"
    return None


def _memory(result: Result) -> str | None:
    activation, total = result.get("activation_peak_bytes"), result.get("total_peak_bytes")
    if activation is None or total is None:
        return None
    if activation <= 0:
        return "activation peak 0: the peak was not seen (allocator stats reset or read at the wrong time)"
    if activation >= total:
        return "activation peak equals the total: weights and inputs were not counted apart"
    return None


def _spread(result: Result) -> str | None:
    iqr, median = result.iqr_s, result.median_s
    if iqr is not None and median and iqr / median > MAX_SPREAD:
        return f"calls spread over {iqr / median:.0%} of the median (IQR {iqr * 1e3:.3g} ms): the calls ran at " \
               "more than one speed (clocks, host load); the median is one of them"
    return None


def _dynamo(result: Result) -> str | None:
    breaks, recompiles = result.get(GRAPH_BREAKS.field), result.get(RECOMPILES.field)
    found = []
    if breaks:
        found.append(f"{breaks} {GRAPH_BREAKS.noun} (first: {(result.get('graph_break_reasons') or ['?'])[0]})")
    if recompiles:
        found.append(f"{recompiles} {RECOMPILES.noun} during warm-up and timing: the timed calls include compiling")
    return "; ".join(found) or None


def _compile_cache(result: Result, cold: bool) -> str | None:
    state = result.get("compile_cache")
    if cold and state in ("hit", "partial"):
        return f"compile cache {state!r} on a machine that should start cold: an artifact of another run?"
    return None


def _compile_times(result: Result) -> str | None:
    """A cold compile that hit a cache, or a warm one that missed, measured something else than its name says."""
    cold, warm = result.get("compile_cold_cache"), result.get("compile_warm_cache")
    found = []
    if cold is not None and cold != "miss":
        found.append(f"cold compile saw cache {cold!r} (should miss an empty cache)")
    if warm is not None and warm != "hit":
        found.append(f"warm compile saw cache {warm!r} (should hit what the cold one stored)")
    return "; ".join(found) or None


def _contended(result: Result) -> str | None:
    reason = result.get("contended")
    return f"timed beside a busy neighbour ({reason}): its time says more about the machine than the code" \
        if reason else None


def _errors(result: Result) -> str | None:
    notes = [f"{key}: {result.get(key)}" for key in ("flops_error", "gpu_time_error", "peak_tflops_matmul_error")
             if result.get(key)]
    return "; ".join(notes) or None


def findings(run: Run, cold: bool = False) -> list[Finding]:
    """Every symptom in `run`. `cold`: the run started with empty compile caches, so any cache hit is suspect."""
    device = run.fingerprint.get("device", "cpu")
    found = []
    for result in run.results.values():
        if result.status != "ok":
            found.append(Finding("status", result.id, f"{result.status}: {result.reason}"))
            continue
        checks = {"kernel": _kernel(result, device), "gpu_busy": _gpu_busy(result), "mfu": _mfu(result),
                  "memory": _memory(result), "spread": _spread(result), "dynamo": _dynamo(result),
                  "compile_cache": _compile_cache(result, cold), "compile_times": _compile_times(result),
                  "contended": _contended(result),
                  "derived": _errors(result)}
        found += [Finding(check, result.id, detail) for check, detail in checks.items() if detail]
    if not run.results:
        found.append(Finding("status", None, "no setting in this run"))
    return found


def render(run: Run, found: list[Finding]) -> str:
    """The checklist as text: one line per finding, or the checks that passed."""
    ok = sum(result.status == "ok" for result in run.results.values())
    lines = [f"{run.path}: {ok}/{len(run.results)} settings ok on {run.device_label}"]
    if not found:
        lines.append("  nothing suspicious: kernels as requested, GPU busy, MFU plausible, memory peaks seen")
    for finding in found:
        lines.append(f"  [{finding.check}] {finding.setting_id or '(run)'}: {finding.detail}")
    return "\n".join(lines)
