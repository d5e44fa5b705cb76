"""Turn vitcnn runs into an answer: a claims check, best-setting and full tables (report.md), and figures.

Data flows one way: run files -> Run (vitcnn.runfile) -> per-device merged results -> best settings -> claims,
tables and figures. Everything up to the Markdown is pure and testable; only `make_figures` needs matplotlib,
imported lazily so that `import vitcnn.report` works without it.

A "best" point is the fastest ok setting (lowest median latency) of one model x resolution x batch. Failed
settings (oom, error, skipped) never win, but they are counted, shown in the full table and marked in figures.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vitcnn import models
from vitcnn.runfile import STATUSES, Result, Run, RunFileError, load_run
from vitcnn.settings import NO_SDPA

Point = tuple[str, int, int]  # (model, resolution, batch)

PASS, FAIL, NOT_MEASURED = "PASS", "FAIL", "NOT MEASURED"
CLAIM_RESOLUTION = 1024
REALTIME_IMAGES_PER_S = 100.0
MIB = 2**20
REPORT_NAME = "report.md"
TIE_RULE = "ties in median latency go to the lexicographically smallest setting id"


# --------------------------------------------------------------------------------------------------- devices


@dataclass
class Device:
    """All results of one machine identity (fingerprint slug), merged over the runs that share it."""

    slug: str
    label: str
    fingerprint: dict
    paths: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    results: dict[str, Result] = field(default_factory=dict)


def group_runs(runs: Iterable[Run]) -> list[Device]:
    """One Device per fingerprint slug, in order of first appearance; a later run wins for the same setting id."""
    devices: dict[str, Device] = {}
    for run in runs:
        device = devices.setdefault(run.slug, Device(run.slug, run.device_label, run.fingerprint))
        device.fingerprint = run.fingerprint
        device.paths.append(run.path)
        if run.profile and run.profile not in device.profiles:
            device.profiles.append(run.profile)
        device.results.update(run.results)
    return list(devices.values())


# ------------------------------------------------------------------------------------------- best settings


@dataclass(frozen=True)
class Best:
    """The fastest ok setting of one model x resolution x batch, or why there is none."""

    model: str
    resolution: int
    batch: int
    result: Result | None  # None when no candidate produced a timing
    candidates: int  # settings the model was given at this point (all statuses)
    status_counts: tuple[tuple[str, int], ...]  # e.g. (("ok", 2), ("oom", 1)), in STATUSES order
    ties: tuple[str, ...] = ()  # other ok setting ids with exactly the winner's median latency
    reason: str | None = None  # first failure reason, when no candidate succeeded

    @property
    def point(self) -> Point:
        return (self.model, self.resolution, self.batch)

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def ok_count(self) -> int:
        return dict(self.status_counts).get("ok", 0)

    @property
    def status(self) -> str:
        """The row's status: ok, or the failure kinds of the candidates (e.g. "oom" or "oom/error")."""
        if self.result is not None:
            return "ok"
        failed = [status for status, _ in self.status_counts if status != "ok"]
        if self.ok_count:
            failed.insert(0, "ok without timing")
        return "/".join(failed) or "no setting"

    @property
    def latency_s(self) -> float | None:
        return self.result.median_s if self.result is not None else None

    @property
    def images_per_s(self) -> float | None:
        return self.batch / self.latency_s if self.latency_s else None


def is_timed(result: Result) -> bool:
    """Whether a result can compete for best: ok, with a finite positive median latency."""
    median = result.median_s
    return result.status == "ok" and isinstance(median, (int, float)) and math.isfinite(median) and median > 0


def _as_results(results: Iterable[Result] | Mapping[str, Result]) -> list[Result]:
    return list(results.values()) if isinstance(results, Mapping) else list(results)


def _by_point(results: Iterable[Result]) -> dict[Point, list[Result]]:
    points: dict[Point, list[Result]] = {}
    for result in results:
        s = result.setting
        points.setdefault((s.model, s.resolution, s.batch), []).append(result)
    return points


def _status_counts(results: list[Result]) -> tuple[tuple[str, int], ...]:
    order = {status: i for i, status in enumerate(STATUSES)}
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return tuple(sorted(counts.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def _first_reason(results: list[Result]) -> str | None:
    reasons = [r.reason for r in sorted(results, key=lambda r: r.id) if r.status != "ok" and r.reason]
    return reasons[0] if reasons else None


def _best_of(point: Point, results: list[Result]) -> Best:
    """Pick the winner of one point: lowest median, then smallest setting id (deterministic)."""
    timed = sorted((r for r in results if is_timed(r)), key=lambda r: (r.median_s, r.id))
    winner = timed[0] if timed else None
    ties = tuple(r.id for r in timed[1:] if r.median_s == winner.median_s) if winner else ()
    reason = None if winner else _first_reason(results)
    return Best(*point, winner, len(results), _status_counts(results), ties, reason)


def best_settings(results: Iterable[Result] | Mapping[str, Result]) -> dict[Point, Best]:
    """The best setting of every model x resolution x batch present in `results` (one device's results)."""
    points = _by_point(_as_results(results))
    return {point: _best_of(point, rs) for point, rs in sorted(points.items(), key=lambda kv: _point_key(kv[0]))}


def _model_order(model: str) -> tuple[int, str]:
    names = models.names()
    return (names.index(model) if model in names else len(names), model)


def _point_key(point: Point) -> tuple:
    model, res, batch = point
    return (batch, res, _model_order(model))


def _family(model: str) -> str:
    try:
        return models.spec(model).family
    except ValueError:
        return "?"


def fairness_notes(bests: Mapping[Point, Best]) -> list[str]:
    """Points where ViTs and CNNs were given different numbers of candidates (a best-of favours more tries)."""
    counts: dict[tuple[int, int], dict[str, set[int]]] = {}
    for best in bests.values():
        by_family = counts.setdefault((best.resolution, best.batch), {})
        by_family.setdefault(_family(best.model), set()).add(best.candidates)
    notes = []
    for (res, batch), by_family in sorted(counts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        vit, cnn = by_family.get("vit"), by_family.get("cnn")
        if vit and cnn and (vit != cnn or len(vit) > 1):
            notes.append(f"{res} px, batch {batch}: ViTs had {_counts_text(vit)} candidates, CNNs {_counts_text(cnn)}")
    return notes


def _counts_text(values: set[int]) -> str:
    return "/".join(str(v) for v in sorted(values))


# ------------------------------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    """One claim of the essay checked against measurements, with the numbers behind the verdict."""

    key: str
    name: str
    verdict: str  # PASS, FAIL or NOT MEASURED
    evidence: str


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1e3:.3g} ms"


def _point_text(bests: Mapping[Point, Best], model: str, res: int) -> str:
    """What is known about `model` at `res`: e.g. "bs1 ok, bs8 oom" or "no setting"."""
    found = sorted((b for b in bests.values() if b.model == model and b.resolution == res), key=lambda b: b.batch)
    if not found:
        return f"{model} at {res} px: no setting in this run"
    return f"{model} at {res} px: " + ", ".join(f"bs{b.batch} {b.status}" for b in found)


def _missing_text(bests: Mapping[Point, Best], model: str, res: int, batch: int) -> str:
    best = bests.get((model, res, batch))
    if best is None:
        return f"no {model} setting at {res} px, batch {batch} in this run"
    counts = ", ".join(f"{status} x{n}" for status, n in best.status_counts)
    why = f"; first reason: {best.reason}" if best.reason else ""
    return f"no timed {model} setting at {res} px, batch {batch} ({counts}){why}"


def _timed_batches(bests: Mapping[Point, Best], model: str, res: int) -> set[int]:
    return {n for (m, r, n), best in bests.items() if m == model and r == res and best.ok}


def _common_batch(bests: Mapping[Point, Best], a: str, b: str, res: int) -> int | None:
    """Smallest batch at which both models have a timed best at `res` (batch 1 when both have it)."""
    return min(_timed_batches(bests, a, res) & _timed_batches(bests, b, res), default=None)


def _no_common_batch(bests: Mapping[Point, Best], a: str, b: str, res: int) -> str:
    known = f"{_point_text(bests, a, res)}; {_point_text(bests, b, res)}"
    return f"no batch with a timed best for both at {res} px ({known})"


def _best_text(best: Best) -> str:
    return f"{best.model} {_ms(best.latency_s)} ({_num(best.images_per_s)} img/s, {best.result.id})"


def claim_realtime(bests: Mapping[Point, Best]) -> Claim:
    """ViT-B/16 reaches real-time (>= 100 img/s) at 1024 px, batch 1, with its best setting."""
    res = CLAIM_RESOLUTION
    name = f"vit_b16 runs at >= {REALTIME_IMAGES_PER_S:g} img/s at {res} px, batch 1"
    best = bests.get(("vit_b16", res, 1))
    if best is None or not best.ok:
        return Claim("vit_realtime_1024", name, NOT_MEASURED, _missing_text(bests, "vit_b16", res, 1))
    verdict = PASS if best.images_per_s >= REALTIME_IMAGES_PER_S else FAIL
    sign = ">=" if verdict == PASS else "<"
    evidence = (f"best {best.result.id}: {_num(best.images_per_s)} img/s ({_ms(best.latency_s)}) "
                f"{sign} {REALTIME_IMAGES_PER_S:g}")
    return Claim("vit_realtime_1024", name, verdict, evidence)


def _faster_claim(bests: Mapping[Point, Best], key: str, fast: str, slow: str, extra: str = "") -> Claim:
    """`fast` has a lower best latency than `slow` at 1024 px, compared at their smallest common batch."""
    res = CLAIM_RESOLUTION
    name = f"{fast} is faster than {slow} at {res} px"
    batch = _common_batch(bests, fast, slow, res)
    if batch is None:
        return Claim(key, name, NOT_MEASURED, _no_common_batch(bests, fast, slow, res) + extra)
    a, b = bests[(fast, res, batch)], bests[(slow, res, batch)]
    verdict = PASS if a.latency_s < b.latency_s else FAIL
    evidence = (f"batch {batch}: {_best_text(a)} vs {_best_text(b)}; "
                f"{slow}/{fast} latency = {b.latency_s / a.latency_s:.3g}x{extra}")
    return Claim(key, name, verdict, evidence)


def claim_vitdet_vs_convnext(bests: Mapping[Point, Best]) -> Claim:
    return _faster_claim(bests, "vitdet_faster_than_convnext_1024", "vitdet_b16", "convnext_b")


def speedups(bests: Mapping[Point, Best], fast: str, slow: str, batch: int) -> list[tuple[int, float]]:
    """(resolution, slow latency / fast latency) wherever both models have a timed best at `batch`."""
    out = []
    for (model, res, n), best in sorted(bests.items(), key=lambda kv: kv[0][1]):
        other = bests.get((slow, res, n))
        if model == fast and n == batch and best.ok and other is not None and other.ok:
            out.append((res, other.latency_s / best.latency_s))
    return out


def _speedup_batch(bests: Mapping[Point, Best], fast: str, slow: str) -> int | None:
    """The batch whose speedup curve to list: the 1024 px comparison batch, else the smallest with any overlap."""
    batch = _common_batch(bests, fast, slow, CLAIM_RESOLUTION)
    if batch is not None:
        return batch
    batches = sorted({n for (m, _, n) in bests if m == fast})
    return next((n for n in batches if speedups(bests, fast, slow, n)), None)


def claim_vitdet_vs_vit(bests: Mapping[Point, Best]) -> Claim:
    """ViTDet-B/16 beats ViT-B/16 at 1024 px; the evidence lists the speedup at every common resolution."""
    batch = _speedup_batch(bests, "vitdet_b16", "vit_b16")
    ratios = speedups(bests, "vitdet_b16", "vit_b16", batch) if batch is not None else []
    if ratios:
        curve = ", ".join(f"{res} px {ratio:.3g}x" for res, ratio in ratios)
        extra = f". Speedup vit_b16/vitdet_b16 latency at batch {batch}: {curve}"
    else:
        extra = ". No resolution where both were timed at the same batch"
    return _faster_claim(bests, "vitdet_faster_than_vit_1024", "vitdet_b16", "vit_b16", extra)


def claim_memory(bests: Mapping[Point, Best]) -> Claim:
    """ViT-B/16 needs no more activation memory than ConvNeXt-B at 1024 px (best settings, same batch)."""
    res, key = CLAIM_RESOLUTION, "vit_memory_le_convnext_1024"
    name = f"vit_b16 activation memory <= convnext_b's at {res} px"
    batch = _common_batch(bests, "vit_b16", "convnext_b", res)
    if batch is None:
        return Claim(key, name, NOT_MEASURED, _no_common_batch(bests, "vit_b16", "convnext_b", res))
    vit, cnn = bests[("vit_b16", res, batch)], bests[("convnext_b", res, batch)]
    mem_vit, mem_cnn = (b.result.get("activation_peak_bytes") for b in (vit, cnn))
    if mem_vit is None or mem_cnn is None:
        unmeasured = [b.result.id for b, m in ((vit, mem_vit), (cnn, mem_cnn)) if m is None]
        evidence = f"batch {batch}: activation memory not measured for {', '.join(unmeasured)} (CUDA only)"
        return Claim(key, name, NOT_MEASURED, evidence)
    verdict = PASS if mem_vit <= mem_cnn else FAIL
    evidence = (f"batch {batch}: vit_b16 {mem_vit / MIB:,.1f} MiB ({vit.result.id}) vs convnext_b "
                f"{mem_cnn / MIB:,.1f} MiB ({cnn.result.id}); ratio {mem_vit / mem_cnn:.3g}")
    return Claim(key, name, verdict, evidence)


@dataclass(frozen=True)
class Flops:
    """FLOPs per image of one model at one resolution (batch-independent), with the attention part."""

    total: float
    attention: float | None
    source: str  # the setting id they came from


def flops_per_image(results: Iterable[Result] | Mapping[str, Result]) -> dict[tuple[str, int], Flops]:
    """Per model x resolution, FLOPs / image from the ok result with a FLOP count at the smallest batch."""
    out: dict[tuple[str, int], Flops] = {}
    counted = [r for r in _as_results(results) if r.status == "ok" and r.get("flops")]
    for r in sorted(counted, key=lambda r: (r.setting.batch, r.id)):
        key, n = (r.setting.model, r.setting.resolution), r.setting.batch
        if key not in out:
            attention = r.get("attention_flops")
            out[key] = Flops(r.get("flops") / n, attention / n if attention is not None else None, r.id)
    return out


def attention_crossover(flops: Mapping[tuple[str, int], Flops], model: str) -> str:
    """The lowest resolution where attention is more than half of `model`'s FLOPs, as a sentence."""
    known = sorted((res, f) for (m, res), f in flops.items() if m == model and f.attention is not None)
    if not known:
        return f"attention FLOPs of {model} not measured"
    over = [res for res, f in known if f.attention > 0.5 * f.total]
    shares = ", ".join(f"{res} px {f.attention / f.total:.0%}" for res, f in known)
    where = f"from {over[0]} px" if over else "not within measured range"
    return f"attention > 50% of {model} FLOPs: {where} (attention share: {shares})"


def _gflops(flops: Mapping[tuple[str, int], Flops], model: str, res: int) -> str:
    return _num(flops[(model, res)].total / 1e9)


def claim_flops_growth(flops: Mapping[tuple[str, int], Flops]) -> Claim:
    """ViT-B/16's FLOPs grow faster with resolution than ConvNeXt-B's (quadratic attention vs linear convs)."""
    key, name = "vit_flops_grow_faster", "vit_b16 FLOPs grow faster with resolution than convnext_b's"
    crossover = attention_crossover(flops, "vit_b16")
    common = sorted({r for m, r in flops if m == "vit_b16"} & {r for m, r in flops if m == "convnext_b"})
    if len(common) < 2:
        return Claim(key, name, NOT_MEASURED, f"need FLOP counts of both at >= 2 common resolutions, have "
                                              f"{common or 'none'}; {crossover}")
    lo, hi = common[0], common[-1]
    growth = {m: flops[(m, hi)].total / flops[(m, lo)].total for m in ("vit_b16", "convnext_b")}
    verdict = PASS if growth["vit_b16"] > growth["convnext_b"] else FAIL
    evidence = (f"FLOPs({hi} px)/FLOPs({lo} px): vit_b16 {growth['vit_b16']:.3g}x "
                f"({_gflops(flops, 'vit_b16', lo)} -> {_gflops(flops, 'vit_b16', hi)} GFLOPs/img), "
                f"convnext_b {growth['convnext_b']:.3g}x ({_gflops(flops, 'convnext_b', lo)} -> "
                f"{_gflops(flops, 'convnext_b', hi)} GFLOPs/img); {crossover}")
    return Claim(key, name, verdict, evidence)


def check_claims(results: Iterable[Result] | Mapping[str, Result]) -> list[Claim]:
    """Check the essay's claims on one device's results; missing data gives NOT MEASURED, never a guess."""
    results = _as_results(results)
    bests = best_settings(results)
    return [
        claim_realtime(bests),
        claim_vitdet_vs_convnext(bests),
        claim_memory(bests),
        claim_vitdet_vs_vit(bests),
        claim_flops_growth(flops_per_image(results)),
    ]


# ------------------------------------------------------------------------------------------------ metrics


def _mfu_percent(result: Result, mfu_key: str) -> float | None:
    """The harness's MFU (a fraction) in percent."""
    mfu = result.get(mfu_key)
    return None if mfu is None else 100 * mfu


def _scaled(key: str, scale: float) -> Callable[[Result], float | None]:
    def value(result: Result) -> float | None:
        raw = result.get(key)
        return raw / scale if raw is not None else None

    return value


@dataclass(frozen=True)
class Series:
    """One line per model within a figure (MFU has two: against the spec peak and the measured matmul)."""

    label: str | None  # legend suffix; None for a metric with one series per model
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


METRICS: tuple[Metric, ...] = (
    Metric("throughput", "Throughput", "images / s", True,
           (Series(None, lambda r: r.setting.batch / r.median_s),), "no timed setting"),
    Metric("latency", "Latency (median per call)", "ms per batch", True,
           (Series(None, lambda r: r.median_s * 1e3),), "no timed setting"),
    Metric("activation_memory", "Activation peak memory", "MiB (allocated, above weights)", True,
           (Series(None, _scaled("activation_peak_bytes", MIB)),),
           "activation memory is measured on CUDA only"),
    Metric("flops", "FLOPs per call, incl. attention", "GFLOPs per batch", True,
           (Series(None, _scaled("flops", 1e9)),), "no FLOP count succeeded"),
    Metric("mfu", "Model FLOP utilisation", "MFU (%)", False,
           (Series("vs spec peak", lambda r: _mfu_percent(r, "mfu_spec")),
            Series("vs measured matmul", lambda r: _mfu_percent(r, "mfu_matmul"), "--")),
           "needs a FLOP count and a known peak (spec or measured matmul)"),
)


def metric_value(metric: Metric, series: Series, best: Best) -> float | None:
    """The plotted value of a best point, or None (not timed, not measured, or not positive on a log axis)."""
    if best.result is None:
        return None
    value = series.value(best.result)
    if value is None or not math.isfinite(value) or (metric.log and value <= 0):
        return None
    return value


# ------------------------------------------------------------------------------------------------ figures


@dataclass(frozen=True)
class FigurePlan:
    """One figure of a device: which metric at which batch, and whether there is anything to draw."""

    metric: Metric
    batch: int
    filename: str
    measured: bool


def figure_filename(metric_key: str, slug: str, batch: int) -> str:
    return f"{metric_key}_{slug}_bs{batch}.png"


def plan_figures(device: Device, bests: Mapping[Point, Best] | None = None) -> list[FigurePlan]:
    """Every figure of a device: each metric for each batch size, in a stable order."""
    bests = best_settings(device.results) if bests is None else bests
    plans = []
    for batch in sorted({p[2] for p in bests}):
        at_batch = [b for p, b in bests.items() if p[2] == batch]
        for metric in METRICS:
            measured = any(metric_value(metric, s, b) is not None for b in at_batch for s in metric.series)
            plans.append(FigurePlan(metric, batch, figure_filename(metric.key, device.slug, batch), measured))
    return plans


def precision_rule(results: Iterable[Result], batch: int) -> str:
    """How the plotted setting was chosen, for the title: the single precision, or best over several."""
    precisions = sorted({r.setting.precision for r in results if r.setting.batch == batch})
    if len(precisions) == 1:
        return f"{precisions[0]}, fastest setting per point"
    return f"best over settings ({'/'.join(precisions)})"


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
    ordered = sorted(model_names, key=_model_order)
    return {m: (PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]) for i, m in enumerate(ordered)}


def _plot_lines(ax, metric: Metric, bests: list[Best], styles: dict[str, tuple[str, str]]) -> list:
    """One line per model (and per series); returns legend handles: models by colour, series by line style."""
    from matplotlib.lines import Line2D

    handles = []
    for model in sorted({b.model for b in bests}, key=_model_order):
        points = sorted((b for b in bests if b.model == model), key=lambda b: b.resolution)
        color, marker = styles[model]
        drawn = False
        for series in metric.series:
            xy = [(b.resolution, metric_value(metric, series, b)) for b in points]
            xy = [(x, y) for x, y in xy if y is not None]
            if xy:
                ax.plot(*zip(*xy), marker=marker, linestyle=series.linestyle, color=color)
                drawn = True
        if drawn:
            handles.append(Line2D([], [], marker=marker, color=color, label=model))
    if handles and len(metric.series) > 1:
        handles += [Line2D([], [], color="black", linestyle=s.linestyle, label=s.label) for s in metric.series]
    return handles


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
    failed = sorted((b for b in bests if not b.ok), key=lambda b: (b.resolution, _model_order(b.model)))
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
    if handles:
        fig.legend(handles=handles, loc="outside right center", fontsize=9, title="fastest ok setting")
    if plan.metric.log and plan.measured:
        _label_minor_log_ticks(ax)
    if not plan.measured:
        ax.set_yticks([])
        ax.text(0.5, 0.5, f"not measured on this device\n({plan.metric.unmeasured})", transform=ax.transAxes,
                ha="center", va="center", fontsize=14, color="dimgray")
    rule = precision_rule(device.results.values(), plan.batch)
    fig.suptitle(f"{plan.metric.title} vs resolution", fontsize=13, fontweight="bold")
    ax.set_title(f"{device.label} | batch {plan.batch} | {rule}", fontsize=9)
    fig.savefig(path)
    return path


def make_figures(runs: Iterable[Run], out_dir: Path) -> list[Path]:
    """Write every figure (per device, batch and metric) as PNG into out_dir; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for device in group_runs(runs):
        bests = best_settings(device.results)
        for plan in plan_figures(device, bests):
            paths.append(_draw_figure(plan, device, bests, out_dir / plan.filename))
    return paths


# ----------------------------------------------------------------------------------------------- markdown


def _cell(value) -> str:
    """A Markdown table cell: no pipes or newlines."""
    text = "—" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def _short(text: str | None, limit: int = 200) -> str | None:
    """A failure reason cut to fit a table row (tracebacks can be long)."""
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _num(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1:
        return f"{value:.2f}"
    return f"{value:.2g}"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


FINGERPRINT_ROWS = (
    ("GPU", "gpu_name"), ("GPU SMs", "gpu_sm_count"), ("GPU capability", "gpu_capability"), ("driver", "driver"),
    ("CUDA", "cuda"), ("cuDNN", "cudnn"), ("CPU", "cpu_model"), ("CPU cores", "cpu_count"),
    ("torch threads", "torch_threads"), ("python", "python"), ("torch", "torch"), ("triton", "triton"),
    ("timm", "timm"),
)


def machines_markdown(devices: list[Device]) -> str:
    """The fingerprint of every device side by side, so every number below has a known machine."""
    header = ["", *(d.label for d in devices)]
    rows = [["device", *(d.fingerprint.get("device") for d in devices)]]
    rows += [[name, *(d.fingerprint.get(key) for d in devices)] for name, key in FINGERPRINT_ROWS]
    rows.insert(3, ["GPU memory", *(_gib(d.fingerprint.get("gpu_memory_bytes")) for d in devices)])
    rows.append(["profile", *(", ".join(d.profiles) or None for d in devices)])
    rows.append(["run files", *(", ".join(d.paths) for d in devices)])
    rows.append(["slug", *(d.slug for d in devices)])
    rows.append(["settings", *(len(d.results) for d in devices)])
    return _table(header, rows)


def _gib(value) -> str | None:
    return f"{value / 2**30:.1f} GiB" if value else None


def claims_markdown(claims: list[Claim]) -> str:
    return _table(["Verdict", "Claim", "Evidence"], [[f"**{c.verdict}**", c.name, c.evidence] for c in claims])


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
            _num(best.images_per_s), _num(best.latency_s * 1e3), candidates, tie_note]


def best_markdown(bests: Mapping[Point, Best]) -> str:
    """Best-setting table plus the tie rule and the fairness note on candidate counts."""
    header = ["Model", "Res (px)", "Batch", "Status", "Best setting", "Precision", "Kernel (SDPA / layout)",
              "Compile", "img/s", "Latency (ms)", "Candidates ok/given", "Note"]
    rows = [_best_row(b) for b in sorted(bests.values(), key=lambda b: _point_key(b.point))]
    notes = fairness_notes(bests)
    fairness = ("Fairness: ViTs and CNNs were given the same number of candidate settings at every point "
                "where both were measured." if not notes else
                "Fairness: **ViTs and CNNs had different numbers of candidate settings** at: " + "; ".join(notes) + ".")
    rule = (f"Best = lowest median latency among ok settings only; {TIE_RULE} (marked †). "
            "A point where every candidate failed shows their status instead.")
    return "\n\n".join([rule, fairness, _table(header, rows)])


def _full_row(result: Result) -> list:
    timed = is_timed(result)
    ms = result.median_s * 1e3 if timed else None
    iqr = result.stats.get("iqr") * 1e3 if timed and result.stats.get("iqr") is not None else None
    images_per_s = result.setting.batch / result.median_s if timed else None
    flops, act = result.get("flops"), result.get("activation_peak_bytes")
    return [result.id, result.status, _num(ms), _num(iqr), _num(images_per_s),
            _num(flops / 1e9 if flops else None), _num(act / MIB if act is not None else None),
            _num(_mfu_percent(result, "mfu_spec")), _num(_mfu_percent(result, "mfu_matmul")),
            _num(result.get("compile_time_s")), _short(result.reason)]


def full_markdown(results: Mapping[str, Result]) -> str:
    """Every setting, failed ones included with their reason."""
    header = ["Setting", "Status", "Median (ms)", "IQR (ms)", "img/s", "GFLOPs", "Act. peak (MiB)",
              "MFU spec (%)", "MFU matmul (%)", "Compile (s)", "Reason"]
    ordered = sorted(results.values(), key=lambda r: (_model_order(r.setting.model), r.setting.resolution,
                                                      r.setting.batch, r.id))
    return _table(header, [_full_row(r) for r in ordered])


def figures_markdown(plans: list[FigurePlan]) -> str:
    """A figure index: one row per metric, one column per batch; unmeasured metrics say so."""
    batches = sorted({p.batch for p in plans})
    if not batches:
        return "No figures: no results."
    cells = {(p.metric.key, p.batch): p for p in plans}
    rows = []
    for metric in METRICS:
        row = [metric.title]
        for batch in batches:
            plan = cells[(metric.key, batch)]
            row.append(f"[figure]({plan.filename})" + ("" if plan.measured else " (not measured on this device)"))
        rows.append(row)
    unmeasured = sorted({p.metric.title + ": " + p.metric.unmeasured for p in plans if not p.measured})
    note = "\n\nNot measured: " + "; ".join(unmeasured) + "." if unmeasured else ""
    return _table(["Figure", *(f"batch {b}" for b in batches)], rows) + note


def report_markdown(runs: list[Run], figure_error: str | None = None) -> str:
    """The whole report.md: machines, claims check (first, most useful), best settings, all settings, figures."""
    devices = group_runs(runs)
    if not devices:
        return "# vitcnn report\n\nNo runs given.\n"
    bests = {d.slug: best_settings(d.results) for d in devices}
    parts = ["# vitcnn report", "## Machines", machines_markdown(devices), "## Claims check",
             "Each claim is checked per device on the best (fastest ok) setting of each point; "
             "NOT MEASURED says what is missing."]
    for d in devices:
        parts += [f"### {d.label}", claims_markdown(check_claims(d.results))]
    parts.append("## Best setting per model × resolution × batch")
    for d in devices:
        parts += [f"### {d.label}", best_markdown(bests[d.slug])]
    parts.append("## All settings")
    for d in devices:
        parts += [f"### {d.label}", full_markdown(d.results)]
    parts.append("## Figures")
    for d in devices:
        parts.append(f"### {d.label}")
        parts.append(f"Figures not written: {figure_error}" if figure_error else
                     figures_markdown(plan_figures(d, bests[d.slug])))
    return "\n\n".join(parts) + "\n"


def write_report(runs: list[Run], out_dir: Path) -> Path:
    """Write figures and report.md into out_dir; returns report.md's path. Without matplotlib, report.md says so."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figure_error = None
    try:
        make_figures(runs, out_dir)
    except ImportError as exc:
        figure_error = f"matplotlib is not available ({exc}); install the 'plot' extra"
    path = out_dir / REPORT_NAME
    path.write_text(report_markdown(runs, figure_error))
    return path


# ---------------------------------------------------------------------------------------------------- CLI


def add_cli(subparsers) -> None:
    """Register `python -m vitcnn report RUN.json [...] --out DIR [--summary FILE]`."""
    parser = subparsers.add_parser(
        "report", help="tables, figures and the claims check for one or more runs",
        description="Write DIR/report.md (claims check, best settings, all settings) and PNG figures. "
                    "Runs of the same machine are merged (a later file wins for the same setting).")
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN.json", help="run files (pytest-benchmark JSON)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    parser.add_argument("--summary", type=Path, metavar="FILE",
                        help="also append the Markdown to FILE (e.g. $GITHUB_STEP_SUMMARY)")
    parser.set_defaults(handler=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    """Exit 0 on success, 2 when a run file cannot be read or is not a vitcnn run."""
    try:
        runs = [load_run(path) for path in args.runs]
    except RunFileError as exc:
        print(f"vitcnn report: error: {exc}", file=sys.stderr)
        return 2
    path = write_report(runs, args.out)
    if args.summary is not None:
        with open(args.summary, "a") as summary:
            summary.write(path.read_text())
    print(f"vitcnn report: wrote {path}")
    return 0
