"""What the figures plot: one Metric per figure kind, and the plan of every figure of a device (pure, no matplotlib).

report/figures.py draws the plans; report/markdown.py lists them, so both agree on what was measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from vitcnn.report.best import Best, Device, Point
from vitcnn.runfile import Result
from vitcnn.table import MIB


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else 100 * fraction


@dataclass(frozen=True)
class Series:
    """One line per model within a figure (MFU has two: against the spec peak and the measured matmul)."""

    label: str | None  # legend entry for the line style; None for a metric with one series per model
    value: Callable[[Result], float | None]
    linestyle: str = "-"


@dataclass(frozen=True)
class Metric:
    """One figure kind: what is plotted per best point, and how to say that it was not measured."""

    key: str
    title: str
    ylabel: str
    log: bool
    series: tuple[Series, ...]
    unmeasured: str
    from_flops: bool = False  # built on the FLOP count: a point whose count has an error is marked


METRICS: tuple[Metric, ...] = (
    Metric("throughput", "Throughput", "images / s", True, (Series(None, lambda r: r.images_per_s),),
           "no timed setting"),
    Metric("latency", "Latency (median per call)", "ms per batch", True,
           (Series(None, lambda r: r.median_s * 1e3 if r.median_s else None),), "no timed setting"),
    Metric("activation_memory", "Activation peak memory", "MiB (allocated, above weights and input)", True,
           (Series(None, lambda r: r.activation_peak_bytes / MIB if r.activation_peak_bytes is not None else None),),
           "no memory measured (run files from before CPU memory was measured have none)"),
    Metric("flops", "FLOPs per call, incl. attention", "GFLOPs per batch", True,
           (Series(None, lambda r: r.flops / 1e9 if r.flops is not None else None),), "no FLOP count succeeded",
           from_flops=True),
    Metric("mfu", "Model FLOP utilisation", "MFU (%)", False,
           (Series("vs spec peak", lambda r: _percent(r.mfu("spec"))),
            Series("vs measured matmul", lambda r: _percent(r.mfu("matmul")), "--")),
           "needs a FLOP count and a known peak (spec or measured matmul)", from_flops=True),
)


def _mib(key: str) -> Callable[[Result], float | None]:
    return lambda r: r.get(key) / MIB if r.get(key) is not None else None


# Training steps (task "train"): the same questions for one step (forward, loss, backward, optimizer step).
TRAIN_METRICS: tuple[Metric, ...] = (
    Metric("train_throughput", "Training throughput", "images / s (trained)", True,
           (Series(None, lambda r: r.images_per_s),), "no timed training step"),
    Metric("train_step_time", "Training step time (median)", "ms per step", True,
           (Series(None, lambda r: r.median_s * 1e3 if r.median_s else None),), "no timed training step"),
    Metric("train_memory", "Training memory", "MiB (allocated)", True,
           (Series("total peak (weights, gradients, optimizer state, activations)", _mib("total_peak_bytes")),
            Series("peak beyond weights and optimizer state (incl. gradients)", _mib("activation_peak_bytes"), "--")),
           "no memory measured"),
)
TASK_METRICS = {"infer": METRICS, "train": TRAIN_METRICS}


def metric_value(metric: Metric, series: Series, best: Best) -> float | None:
    """The plotted value of a best point, or None (not timed, not measured, or not positive on a log axis)."""
    if best.result is None:
        return None
    value = series.value(best.result)
    if value is None or not math.isfinite(value) or (metric.log and value <= 0):
        return None
    return value


@dataclass(frozen=True)
class FigurePlan:
    """One figure of a device: which metric at which batch, and whether there is anything to draw."""

    metric: Metric
    batch: int
    filename: str
    measured: bool
    flops_errors: tuple[str, ...] = ()  # best settings whose FLOP count has an error (FLOP-based metrics)
    task: str = "infer"


def figure_filename(metric_key: str, slug: str, batch: int) -> str:
    return f"{metric_key}_{slug}_bs{batch}.png"


def plan_figures(device: Device, bests: Mapping[Point, Best], task: str = "infer") -> list[FigurePlan]:
    """Every figure of a device for one task: each of its metrics for each batch size, in a stable order."""
    plans = []
    for batch in sorted({p[2] for p in bests}):
        at_batch = [b for p, b in bests.items() if p[2] == batch]
        for metric in TASK_METRICS[task]:
            drawn = [b for b in at_batch if any(metric_value(metric, s, b) is not None for s in metric.series)]
            errors = tuple(b.result.id for b in at_batch if metric.from_flops and b.ok and b.result.flops_error)
            plans.append(FigurePlan(metric, batch, figure_filename(metric.key, device.slug, batch), bool(drawn),
                                    errors, task))
    return plans


def precision_rule(results: Iterable[Result], batch: int, task: str = "infer") -> str:
    """How the plotted setting was chosen, for the title: the single precision, or best over several."""
    precisions = sorted({r.setting.precision for r in results if r.setting.batch == batch and r.setting.task == task})
    if len(precisions) == 1:
        return f"{precisions[0]}, fastest setting per point"
    return f"best over settings ({'/'.join(precisions)})"


def not_measured_where(device: Device) -> str:
    """'on CPU' for a CPU device, else 'on this device': said wherever a metric has no data."""
    return "on CPU" if device.fingerprint.get("device") == "cpu" else "on this device"
