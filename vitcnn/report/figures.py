"""The report's PNG figures: one per device, batch size and metric (vitcnn/report/metrics.py), drawn from the
analysis the Markdown also reads. The only module of vitcnn that imports matplotlib, and only when drawing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from vitcnn.report.analysis import DeviceAnalysis
from vitcnn.report.best import Best, Device, Point, model_order
from vitcnn.report.compiled import SPEEDUP_FIGURE, speedup_points
from vitcnn.report.metrics import FigurePlan, Metric, metric_value, not_measured_where, precision_rule


def _pyplot_free_figure():
    """A matplotlib Figure on the Agg backend: headless, and no global pyplot state to leak between figures."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(9, 5.6), dpi=110, layout="constrained")


def _style_axes(ax, resolutions: list[int], metric: Metric) -> None:
    from matplotlib.ticker import FuncFormatter, NullLocator

    ax.set_xscale("log", base=2)
    ax.set_xticks(resolutions, [str(r) for r in resolutions])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(resolutions[0] / 1.2, resolutions[-1] * 1.2)
    if metric.log:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(_tick))
    ax.set_xlabel("resolution (px, square input)")
    ax.set_ylabel(metric.ylabel)
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", axis="y", alpha=0.1)


def _tick(value: float, _pos=None) -> str:
    """Plain numbers on log axes (600, not 6x10^2)."""
    return f"{value:,.6g}"


def _label_minor_log_ticks(ax) -> None:
    """Label minor ticks of a log y axis: all of them over less than a decade, else only 2x and 5x a power of
    ten, so every figure has several readable numbers without clutter. Call after the y limits are final."""
    from matplotlib.ticker import FuncFormatter

    low, high = ax.get_ylim()
    short = low > 0 and high / low < 10
    wanted = (2, 3, 4, 5, 6, 7, 8, 9) if short else (2, 5)

    def label(value: float, _pos=None) -> str:
        if value <= 0:
            return ""
        mantissa = round(value / 10 ** math.floor(math.log10(value)), 6)
        return _tick(value) if mantissa in wanted else ""

    ax.yaxis.set_minor_formatter(FuncFormatter(label))


PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray",
           "tab:olive", "tab:cyan")
MARKERS = ("o", "s", "^", "D", "P", "*", "h", "<", ">")  # x and v are kept for failed points


def _model_styles(model_names: list[str]) -> dict[str, tuple[str, str]]:
    """(colour, marker) per model, stable across a device's figures; markers tell overlapping lines apart."""
    ordered = sorted(model_names, key=model_order)
    return {m: (PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]) for i, m in enumerate(ordered)}


def _plot_lines(ax, metric: Metric, bests: list[Best], styles: dict[str, tuple[str, str]]) -> list:
    """One line per model (and per series); returns legend handles: models by colour, series by line style."""
    from matplotlib.lines import Line2D

    handles, drawn_series = [], []
    for model in sorted({b.model for b in bests}, key=model_order):
        points = sorted((b for b in bests if b.model == model), key=lambda b: b.resolution)
        color, marker = styles[model]
        drawn = False
        for series in metric.series:
            xy = [(b.resolution, metric_value(metric, series, b)) for b in points]
            xy = [(x, y) for x, y in xy if y is not None]
            if xy:
                ax.plot(*zip(*xy), marker=marker, linestyle=series.linestyle, color=color)
                drawn = True
                drawn_series += [series] if series not in drawn_series else []
        if drawn:
            handles.append(Line2D([], [], marker=marker, color=color, label=model))
    if handles and len(metric.series) > 1:  # name only the line styles actually drawn (a CPU has no spec peak)
        handles += [Line2D([], [], color="black", linestyle=s.linestyle, label=f"{s.label} ({_STYLE[s.linestyle]})")
                    for s in metric.series if s in drawn_series]
    return handles


_STYLE = {"-": "solid", "--": "dashed"}


def _plot_flops_errors(ax, metric: Metric, bests: list[Best], styles: dict[str, tuple[str, str]]) -> list:
    """Ring every plotted point whose FLOP count has an error, and say so under the axes: an undercount is
    never shown as a plain number. Returns the legend handle explaining the ring."""
    from matplotlib.lines import Line2D

    flagged = [b for b in bests if b.ok and b.result.flops_error]
    if not metric.from_flops or not flagged:
        return []
    for best in flagged:
        for series in metric.series:
            y = metric_value(metric, series, best)
            if y is not None:
                ax.plot([best.resolution], [y], marker="o", markersize=14, markerfacecolor="none",
                        markeredgecolor="red", markeredgewidth=2, linestyle="none")
    names = ", ".join(f"{b.model} {b.resolution} px" for b in flagged)
    ax.text(0.01, 0.01, f"FLOP count incomplete ({names}): values are lower bounds or missing; see report.md",
            transform=ax.transAxes, fontsize=8, color="red", va="bottom", wrap=True)
    return [Line2D([], [], marker="o", markersize=10, markerfacecolor="none", markeredgecolor="red",
                   linestyle="none", label="FLOP count incomplete")]


def _headroom(ax, log: bool) -> None:
    """Lift the top of the y axis so markers at the top edge do not sit on the data lines."""
    low, high = ax.get_ylim()
    ax.set_ylim(low, high * (high / low) ** 0.25 if log and low > 0 else high + 0.25 * (high - low))


def _failure_handles(kinds: set[str]) -> list:
    from matplotlib.lines import Line2D

    handles = []
    if "oom" in kinds:
        handles.append(Line2D([], [], marker="x", color="black", linestyle="none", markeredgewidth=2,
                              label="OOM (every setting)"))
    if "other" in kinds:
        handles.append(Line2D([], [], marker="v", color="black", linestyle="none", label="failed (every setting)"))
    return handles


def _plot_failures(ax, bests: list[Best], styles: dict[str, tuple[str, str]], log: bool) -> list:
    """Points where every setting failed: a marker at the top edge, labelled, so they are not silently absent.
    Returns legend handles explaining the markers."""
    failed = sorted((b for b in bests if not b.ok), key=lambda b: (b.resolution, model_order(b.model)))
    if not failed:
        return []
    _headroom(ax, log)
    transform = ax.get_xaxis_transform()  # x in data, y in axes fraction
    rightmost = max(b.resolution for b in bests)
    stacked: dict[int, int] = {}
    kinds = set()
    for best in failed:
        oom = "oom" in best.status
        kinds.add("oom" if oom else "other")
        level = stacked[best.resolution] = stacked.get(best.resolution, -1) + 1
        y = 0.96 - 0.06 * level
        ax.plot([best.resolution], [y], transform=transform, marker="x" if oom else "v", markersize=10,
                markeredgewidth=2.5, color=styles[best.model][0], linestyle="none")
        left = best.resolution == rightmost
        ax.annotate(f"{best.model}: {'OOM' if oom else best.status}", (best.resolution, y), xycoords=transform,
                    xytext=(-9 if left else 9, 0), textcoords="offset points", fontsize=8, va="center",
                    ha="right" if left else "left", color=styles[best.model][0])
    return _failure_handles(kinds)


def _draw_figure(plan: FigurePlan, device: Device, bests: Mapping[Point, Best], path: Path) -> Path:
    fig = _pyplot_free_figure()
    ax = fig.add_subplot()
    at_batch = [b for p, b in bests.items() if p[2] == plan.batch]
    styles = _model_styles(list({b.model for b in bests.values()}))
    handles = _plot_lines(ax, plan.metric, at_batch, styles)
    _style_axes(ax, sorted({b.resolution for b in at_batch}), plan.metric)
    handles += _plot_failures(ax, at_batch, styles, plan.metric.log)
    handles += _plot_flops_errors(ax, plan.metric, at_batch, styles)
    if handles:
        title = "fastest ok step" if plan.task == "train" else "fastest ok setting"
        fig.legend(handles=handles, loc="outside right center", fontsize=9, title=title)
    if plan.metric.log and plan.measured:
        _label_minor_log_ticks(ax)
    if not plan.measured:  # keyed on "no data", whatever the device: an empty panel that says why
        ax.set_yticks([], minor=True)
        ax.set_yticks([])
        ax.set_ylabel(f"{plan.metric.ylabel}: no data")
        ax.text(0.5, 0.5, f"not measured {not_measured_where(device)}\n({plan.metric.unmeasured})",
                transform=ax.transAxes, ha="center", va="center", fontsize=14, color="dimgray")
    rule = precision_rule(device.results.values(), plan.batch, plan.task)
    fig.suptitle(f"{plan.metric.title} vs resolution", fontsize=13, fontweight="bold")
    ax.set_title(f"{device.label} | batch {plan.batch} | {rule}", fontsize=9)
    fig.savefig(path)
    return path


def _draw_speedup(device: Device, path: Path) -> Path | None:
    """Speedup over eager vs resolution: a line per model, batch and task, the 95% interval as error bars; a
    dashed line at 1 (no speedup). None when the device's runs have no speedup."""
    points = speedup_points(device.results)
    if not points:
        return None
    fig = _pyplot_free_figure()
    ax = fig.add_subplot()
    styles = _model_styles(list({p.model for p in points}))
    lines = sorted({(p.model, p.batch, p.task) for p in points}, key=lambda k: (model_order(k[0]), k[1], k[2]))
    batches = sorted({k[1] for k in lines})
    for model, batch, task in lines:
        series = sorted((p for p in points if (p.model, p.batch, p.task) == (model, batch, task)),
                        key=lambda p: p.resolution)
        color, marker = styles[model]
        low = [p.speedup - p.ci_low if p.ci_low is not None else 0 for p in series]
        high = [p.ci_high - p.speedup if p.ci_high is not None else 0 for p in series]
        ax.errorbar([p.resolution for p in series], [p.speedup for p in series], yerr=[low, high], color=color,
                    marker=marker, capsize=3, linestyle=("-", "--", ":", "-.")[batches.index(batch) % 4],
                    label=f"{model} bs{batch}" + (" train" if task == "train" else ""))
    ax.axhline(1.0, color="gray", linestyle="--", linewidth=1)
    resolutions = sorted({p.resolution for p in points})
    ax.set_xscale("log", base=2)
    ax.set_xticks(resolutions, [str(r) for r in resolutions])
    ax.set_xlabel("resolution (px)")
    ax.set_ylabel("eager time / compiled time")
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside right center", fontsize=9)
    fig.suptitle("Speedup of torch.compile over eager vs resolution", fontsize=13, fontweight="bold")
    ax.set_title(f"{device.label} | paired blocks in one process, 95% interval", fontsize=9)
    fig.savefig(path)
    return path


def make_figures(analyses: Iterable[DeviceAnalysis], out_dir: Path) -> list[Path]:
    """Write every planned figure (per device, batch and metric) and each device's speedup-over-eager figure as
    PNG into out_dir; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [_draw_figure(plan, a.device, a.bests_of(plan.task), out_dir / plan.filename)
             for a in analyses for plan in a.plans]
    speedups = [_draw_speedup(a.device, out_dir / SPEEDUP_FIGURE.format(slug=a.device.slug)) for a in analyses]
    return paths + [p for p in speedups if p is not None]
