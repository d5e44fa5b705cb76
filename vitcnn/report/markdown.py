"""report.md: the machines, the claims check, the best setting per point, where outlying memory goes, every setting
and the figure index, rendered from the analysis (report/analysis.py) with the shared table renderer (table.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from vitcnn import cpu_isa, table
from vitcnn.fingerprint import missing_identity, records_cpu_isa
from vitcnn.report.analysis import DeviceAnalysis
from vitcnn.report.best import TIE_RULE, Best, Device, Point, fairness_notes, is_timed, model_order, point_key
from vitcnn.report.claims import Claim
from vitcnn.report.compiled import compile_markdown
from vitcnn.report.metrics import METRICS, TRAIN_METRICS, not_measured_where
from vitcnn.report.outliers import OUTLIER_RATIO, memory_outliers
from vitcnn.runfile import Result, cpu_features
from vitcnn.settings import NO_SDPA
from vitcnn.table import MIB, num


def _short(text: str | None, limit: int = 200) -> str | None:
    """A failure reason cut to fit a table row (tracebacks can be long)."""
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _gib(value) -> str | None:
    return f"{value / 2**30:.1f} GiB" if value else None


def cudnn_version(value) -> str | None:
    """torch's cuDNN version integer as a version: 92600 -> 9.26.0 (cuDNN 9: MMmmpp), 8907 -> 8.9.7 (cuDNN 8)."""
    if not isinstance(value, int):
        return value
    major, rest = (value // 10000, value % 10000) if value >= 10000 else (value // 1000, value % 1000)
    return f"{major}.{rest // 100}.{rest % 100}"


FINGERPRINT_ROWS = (  # (row name, fingerprint key, formatter)
    ("GPU", "gpu_name", None), ("GPU SMs", "gpu_sm_count", None), ("GPU memory", "gpu_memory_bytes", _gib),
    ("GPU capability", "gpu_capability", None), ("driver", "driver", None), ("CUDA", "cuda", None),
    ("cuDNN", "cudnn", cudnn_version), ("CPU", "cpu_model", None), ("CPU cores", "cpu_count", None),
    ("torch threads", "torch_threads", None), ("python", "python", None), ("torch", "torch", None),
    ("triton", "triton", None), ("timm", "timm", None),
)
GPU_ONLY = frozenset({"gpu_name", "gpu_sm_count", "gpu_memory_bytes", "gpu_capability", "driver", "cuda", "cudnn"})


def _is_gpu(device: Device) -> bool:
    return device.fingerprint.get("device") == "cuda"


def _machine_cell(device: Device, key: str, formatter):
    """A fingerprint field; GPU fields of a CPU measurement are "n/a" (torch's CUDA build was not used)."""
    if key in GPU_ONLY and not _is_gpu(device):
        return "n/a"
    value = device.fingerprint.get(key)
    return formatter(value) if formatter else value


def _mhz(clocks) -> str | None:
    """{"sm": 1980, "mem": 2619} -> "SM 1980 / memory 2619 MHz"."""
    if not isinstance(clocks, dict):
        return clocks
    return f"SM {clocks.get('sm', '?')} / memory {clocks.get('mem', '?')} MHz"


def _watts(device: Device) -> str | None:
    limit, default = (device.fingerprint.get(k) for k in ("gpu_power_limit_w", "gpu_default_power_limit_w"))
    if limit is None and default is None:
        return None
    capped = " (capped below the default)" if limit and default and limit < default else ""
    return f"{limit} W of default {default} W{capped}"


def _features(device: Device) -> str | None:
    """The kernel features, and for an older fingerprint where they were read from."""
    features, source = cpu_features(device.fingerprint, device.machine_cpu)
    if features is None:
        return None
    text = f"{cpu_isa.tier_label(features)}: {' '.join(features)}"
    return text + (" (from pytest-benchmark's py-cpuinfo record)" if source == "py-cpuinfo" else "")


def _cpu_id(device: Device) -> str | None:
    fields = device.fingerprint if records_cpu_isa(device.fingerprint) else \
        cpu_isa.from_pytest_benchmark(device.machine_cpu or {})
    parts = [fields.get(k) for k in ("cpu_vendor", "cpu_family", "cpu_model_number", "cpu_stepping")]
    if all(p is None for p in parts):
        return None
    return f"{parts[0]}, family {parts[1]}, model {parts[2]}, stepping {parts[3]}"


def _identity(device: Device) -> str:
    missing = missing_identity(device.fingerprint)
    return "complete" if not missing else f"incomplete (older vitcnn; lacks {', '.join(missing)})"


IDENTITY_ROWS = (  # (row name, value of a device, GPU only)
    ("identity", _identity, False),
    ("CPU ISA level (torch)", lambda d: d.fingerprint.get("cpu_capability"), False),
    ("CPU kernel features", _features, False),
    ("CPU vendor, family, model", _cpu_id, False),
    ("GPU board", lambda d: d.fingerprint.get("gpu_board"), True),
    ("MIG", lambda d: d.fingerprint.get("gpu_mig"), True),
    ("ECC", lambda d: d.fingerprint.get("gpu_ecc"), True),
    ("power limit", _watts, True),
    ("max clocks", lambda d: _mhz(d.fingerprint.get("gpu_max_clocks_mhz")), True),
    ("application clocks", lambda d: _mhz(d.fingerprint.get("gpu_application_clocks_mhz")), True),
    ("persistence mode", lambda d: d.fingerprint.get("gpu_persistence"), True),
)


def machines_markdown(devices: list[Device]) -> str:
    """The fingerprint of every device side by side, so every number below has a known machine: beside the model
    name, a CPU's ISA level and kernel features (AMX or not) or a GPU's board, MIG, ECC, clocks and power limit,
    and whether the identity is complete. GPU rows are left out when every device is a CPU."""
    header = ["", *(d.label for d in devices)]
    any_gpu = any(_is_gpu(d) for d in devices)
    rows = [["device", *(d.fingerprint.get("device") for d in devices)]]
    rows += [[name, *(_machine_cell(d, key, fmt) for d in devices)]
             for name, key, fmt in FINGERPRINT_ROWS if any_gpu or key not in GPU_ONLY]
    rows += [[name, *(value(d) if _is_gpu(d) or not gpu_only else "n/a" for d in devices)]
             for name, value, gpu_only in IDENTITY_ROWS if any_gpu or not gpu_only]
    rows.append(["selection", *("; ".join(d.selections) or None for d in devices)])
    rows.append(["run files", *(", ".join(d.paths) for d in devices)])
    rows.append(["slug", *(d.slug for d in devices)])
    rows.append(["settings", *(len(d.results) for d in devices)])
    return table.markdown(header, rows)


def claims_markdown(claims: list[Claim]) -> str:
    return table.markdown(["Verdict", "Claim", "Evidence"], [[f"**{c.verdict}**", c.name, c.evidence] for c in claims])


def _kernel(result: Result) -> str:
    """The kernel axis of a setting: SDPA backend for ViTs (and what actually ran), layout for CNNs."""
    s = result.setting
    if s.sdpa == NO_SDPA:
        return s.layout
    used = result.get("sdpa_backend_used")
    return f"{s.sdpa} (ran {used})" if used and used != s.sdpa else s.sdpa


def _best_row(best: Best) -> list:
    candidates = f"{best.ok_count}/{best.candidates}"
    head = [best.model, best.resolution, best.batch]
    if best.result is None:
        return [*head, best.status, None, None, None, None, None, None, candidates, _short(best.reason)]
    s = best.result.setting
    setting_id = best.result.id + (" †" if best.ties else "")
    tie_note = f"tied with {', '.join(best.ties)}" if best.ties else None
    return [*head, "ok", setting_id, s.precision, _kernel(best.result), s.compile_mode,
            num(best.images_per_s), num(best.latency_s * 1e3), candidates, tie_note]


def best_markdown(bests: Mapping[Point, Best]) -> str:
    """Best-setting table plus the tie rule and the fairness note on candidate counts."""
    header = ["Model", "Res (px)", "Batch", "Status", "Best setting", "Precision", "Kernel (SDPA / layout)",
              "Compile", "img/s", "Latency (ms)", "Candidates ok/given", "Note"]
    rows = [_best_row(b) for b in sorted(bests.values(), key=lambda b: point_key(b.point))]
    notes = fairness_notes(bests)
    fairness = ("Fairness: ViTs and CNNs were given the same number of candidate settings at every point "
                "where both were measured." if not notes else
                "Fairness: **ViTs and CNNs had different numbers of candidate settings** at: " + "; ".join(notes) + ".")
    rule = (f"Best = lowest median latency among ok settings only; {TIE_RULE} (marked †). "
            "A point where every candidate failed shows their status instead.")
    return "\n\n".join([rule, fairness, table.markdown(header, rows)])


def training_memory_markdown(train_bests: Mapping[Point, Best]) -> str:
    """Where a best step's memory goes: weights, gradients, optimizer state, the step's peak above the held state
    (saved activations, gradients, temporaries), and the total peak."""
    header = ["Best step", "Weights (MiB)", "Gradients (MiB)", "Optimizer state (MiB)",
              "Step peak above weights + optimizer state, incl. gradients (MiB)", "Total peak (MiB)", "Optimizer"]
    rows = []
    for best in sorted(train_bests.values(), key=lambda b: point_key(b.point)):
        if best.result is None:
            continue
        r = best.result
        rows.append([r.id, *(num(_scaled(r.get(key), 1 / MIB)) for key in
                             ("weights_bytes", "gradient_bytes", "optimizer_state_bytes", "activation_peak_bytes",
                              "total_peak_bytes")), r.get("optimizer")])
    return "Memory of the best steps:\n\n" + table.markdown(header, rows) if rows else "No timed training step."


FLAG = "⚠"
FLOP_COLUMNS = (5, 8, 9)  # GFLOPs and both MFU columns of the full table


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def _full_row(result: Result) -> list:
    timed = is_timed(result)
    ms = result.median_s * 1e3 if timed else None
    iqr = result.iqr_s * 1e3 if timed and result.iqr_s is not None else None
    images_per_s = result.images_per_s if timed else None
    flops = result.flops / 1e9 if result.flops else None
    row = [result.id, result.status, num(ms), num(iqr), num(images_per_s), num(flops),
            num(_scaled(result.activation_peak_bytes, 1 / MIB)), num(_scaled(result.get("total_peak_bytes"), 1 / MIB)),
            num(_scaled(result.mfu("spec"), 100)), num(_scaled(result.mfu("matmul"), 100)),
            num(result.get("compile_time_s")), _short(result.reason)]
    if result.status == "ok" and result.flops_error:
        for i in FLOP_COLUMNS:
            row[i] = f"{row[i]} {FLAG}"
        row[-1] = _short(f"FLOP count incomplete: {result.flops_error}")
    return row


def full_markdown(results: Mapping[str, Result]) -> str:
    """Every setting, failed ones included with their reason; a FLOP count with an error is flagged (⚠) on
    every number built on it, and said in the Reason column and under the table."""
    header = ["Setting", "Status", "Median (ms)", "IQR (ms)", "img/s", "GFLOPs", "Act. peak (MiB)", "Total peak (MiB)",
              "MFU spec (%)", "MFU matmul (%)", "Compile (s)", "Reason"]
    ordered = sorted(results.values(), key=lambda r: (model_order(r.setting.model), r.setting.resolution,
                                                      r.setting.batch, r.id))
    text = table.markdown(header, [_full_row(r) for r in ordered])
    flagged = [r.id for r in ordered if r.status == "ok" and r.flops_error]
    if flagged:
        text += (f"\n\n{FLAG} **FLOP count incomplete** for {len(flagged)} setting(s): {', '.join(flagged)}. Their "
                 "GFLOPs, TFLOP/s and MFU are lower bounds (or missing), and they are left out of the FLOPs claim.")
    return text


def outliers_markdown(results: Mapping[str, Result]) -> str | None:
    """Settings whose activation peak is far above their peers', with the ops that held it (None if none is)."""
    found = memory_outliers(results)
    if not found:
        return None
    parts = [f"Activation peaks at least {OUTLIER_RATIO:g}x the smallest of the other models at the same "
             "resolution, batch, precision and task, and the ops whose blocks were alive at that peak:"]
    for outlier in found:
        result, peer = outlier.result, outlier.peer
        parts.append(f"**{result.id}**: {num(result.activation_peak_bytes / MIB)} MiB, {outlier.ratio:.3g}x "
                     f"{peer.setting.model}'s {num(peer.activation_peak_bytes / MIB)} MiB ({peer.id})")
        if outlier.holders is None:
            parts.append("Ops at the peak: not recorded (a run from before vitcnn recorded them).")
        else:
            rows = [[f"`{h['op']}`", num(h["bytes"] / MIB), h["blocks"]] for h in outlier.holders]
            parts.append(table.markdown(["Op at the peak", "MiB", "Blocks"], rows))
    return "\n\n".join(parts)


def figures_markdown(analysis: DeviceAnalysis) -> str:
    """A figure index: one row per metric, one column per batch; unmeasured metrics say so, and figures built on
    a FLOP count with an error are flagged."""
    plans, where = analysis.plans, not_measured_where(analysis.device)
    batches = sorted({p.batch for p in plans})
    if not batches:
        return "No figures: no results."
    cells = {(p.metric.key, p.batch): p for p in plans}
    rows = []
    for metric in (*METRICS, *TRAIN_METRICS):
        if not any(key == metric.key for key, _ in cells):
            continue  # a task with no settings in these runs
        row = [metric.title]
        for batch in batches:
            plan = cells.get((metric.key, batch))
            if plan is None:
                row.append(None)
                continue
            flag = f" {FLAG} FLOP count incomplete" if plan.flops_errors else ""
            row.append(f"[figure]({plan.filename})" + ("" if plan.measured else f" (not measured {where})") + flag)
        rows.append(row)
    unmeasured = sorted({p.metric.title + ": " + p.metric.unmeasured for p in plans if not p.measured})
    note = "\n\nNot measured: " + "; ".join(unmeasured) + "." if unmeasured else ""
    return table.markdown(["Figure", *(f"batch {b}" for b in batches)], rows) + note


def render(analyses: list[DeviceAnalysis], figure_error: str | None = None) -> str:
    """The whole report.md: machines, claims check (first, most useful), best settings, all settings, what
    torch.compile cost and bought, figures."""
    if not analyses:
        return "# vitcnn report\n\nNo runs given.\n"
    parts = ["# vitcnn report", "## Machines", machines_markdown([a.device for a in analyses]), "## Claims check",
             "Each claim is checked per device on the best (fastest ok) setting of each point; "
             "NOT MEASURED says what is missing."]
    for a in analyses:
        parts += [f"### {a.device.label}", claims_markdown(a.claims)]
    parts.append("## Best setting per model × resolution × batch")
    for a in analyses:
        parts += [f"### {a.device.label}", best_markdown(a.bests)]
    if any(a.train_bests for a in analyses):
        parts += ["## Training: best step per model × resolution × batch",
                  "One step = forward, cross-entropy loss, backward and AdamW step, fp32 master weights (autocast "
                  "for bf16/fp16); img/s counts images trained. Steps compete only with steps."]
        for a in analyses:
            if a.train_bests:
                parts += [f"### {a.device.label}", best_markdown(a.train_bests), training_memory_markdown(a.train_bests)]
    parts += _devices_section("## Where the bytes go", analyses, lambda a: outliers_markdown(a.device.results))
    parts.append("## All settings")
    for a in analyses:
        parts += [f"### {a.device.label}", full_markdown(a.device.results)]
    parts += _devices_section("## torch.compile: compile time, graph breaks, speedup over eager", analyses,
                              lambda a: compile_markdown(a.device.results, a.device.slug))
    parts.append("## Figures")
    for a in analyses:
        parts.append(f"### {a.device.label}")
        parts.append(f"Figures not written: {figure_error}" if figure_error else figures_markdown(a))
    return "\n\n".join(parts) + "\n"


def _devices_section(title: str, analyses: list[DeviceAnalysis], render: Callable[[DeviceAnalysis], str | None]
                     ) -> list[str]:
    """A section with one part per device that has something to say, or nothing when none has."""
    texts = [(a, text) for a in analyses if (text := render(a))]
    return [title, *(part for a, text in texts for part in (f"### {a.device.label}", text))] if texts else []
