"""What the site's plots draw, as plain JSON-ready data: the essay view of the newest runs and the history of
every setting over commits.

Every number is one vitcnn already derives: the essay view plots the report's figure metrics
(vitcnn.report.metrics: images/s, median latency, activation peak, FLOPs, MFU) of the report's best setting per
point (vitcnn.report.best), and the history pages plot vitcnn.history.series with the change points of
vitcnn.history.changepoints and the verdict words and confirmation labels of `vitcnn history check` (what the
store confirms: publishing measures nothing, so no A/B). Nothing here recomputes them. The
figures are Plotly figure specs (data + layout), so the page's script only picks and draws them.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from vitcnn.history import check
from vitcnn.history.changepoints import Change
from vitcnn.history.series import METRICS as HISTORY_METRICS
from vitcnn.history.series import Series
from vitcnn.report.best import Best, best_settings, model_order
from vitcnn.report.claims import Claim, check_claims
from vitcnn.report.metrics import METRICS, TASK_METRICS, Metric, metric_value
from vitcnn.runfile import Result, order_key
from vitcnn.settings import COMPILE_MODES, PRECISIONS, TASKS
from vitcnn.site.machines import Machine

# The essay's choices, in the order the page offers them: each narrows the next one's options.
AXES = ("machine", "task", "batch", "precision", "compile_mode")
AXIS_LABELS = {"machine": "machine", "task": "task", "batch": "batch size", "precision": "precision",
               "compile_mode": "compile mode"}
# Model families the reader can switch off, by model-name prefix.
TOGGLES = (("vitdet", "ViTDet", "vitdet_"), ("nfnet", "NFNet", "nfnet_"))
# The figures of each task: the report's, plus FLOPs and MFU for a training step (its metrics have neither).
ESSAY_METRICS: dict[str, tuple[Metric, ...]] = {
    "infer": TASK_METRICS["infer"],
    "train": TASK_METRICS["train"] + tuple(m for m in METRICS if m.from_flops),
}
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22")
SAFE_NAME = re.compile(r"[a-z0-9_][a-z0-9_.-]{0,99}")


def safe_name(text: str) -> str:
    """A file name for `text`: itself when it is already safe (lower-case letters, digits, '_', '.', '-', not
    starting with a dot, at most 100 characters), else a cleaned form with a hash of the original, so two
    different texts never share a file."""
    if SAFE_NAME.fullmatch(text):
        return text
    cleaned = re.sub(r"[^a-z0-9_.-]+", "_", text.lower()).lstrip(".-")[:80]
    return f"{cleaned or 'x'}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def _color(model: str) -> str:
    return PALETTE[model_order(model)[0] % len(PALETTE)]


# --------------------------------------------------------------------------------------------------- essay view


def _choice_key(result: Result) -> tuple:
    s = result.setting
    return (s.task, s.batch, s.precision, s.compile_mode)


def _order(values: tuple[str, ...], value: str) -> tuple[int, str]:
    return (values.index(value) if value in values else len(values), value)


def _essay_traces(metric: Metric, bests: dict, unit: str) -> list[dict]:
    """One line per model (two for MFU: vs the spec peak and vs the measured matmul) over resolution."""
    traces = []
    for model in sorted({b.model for b in bests.values()}, key=model_order):
        own = sorted((b for b in bests.values() if b.model == model), key=lambda b: b.resolution)
        for series in metric.series:
            points = [(b, v) for b in own if (v := metric_value(metric, series, b)) is not None]
            if not points:
                continue
            traces.append({
                "type": "scatter", "mode": "lines+markers", "legendgroup": model,
                "name": model if series.label is None else f"{model} ({series.label})",
                "x": [b.resolution for b, _ in points], "y": [v for _, v in points],
                "text": [_point_note(metric, b) for b, _ in points],
                "line": {"color": _color(model), "dash": "solid" if series.linestyle == "-" else "dash"},
                "hovertemplate": f"%{{fullData.name}}<br>%{{x}} px: %{{y:.4g}} {unit}<br>%{{text}}"
                                 "<extra></extra>",
            })
    return traces


def _point_note(metric: Metric, best: Best) -> str:
    note = best.result.id
    if metric.from_flops and best.result.flops_error:
        note += " (FLOP count incomplete)"
    return note


def _failures(bests: dict) -> list[str]:
    return [f"{b.model} at {b.resolution} px: {b.status}" + (f" ({b.reason})" if b.reason else "")
            for b in sorted(bests.values(), key=lambda b: (model_order(b.model), b.resolution)) if not b.ok]


def _essay_layout(metric: Metric) -> dict:
    return {
        "title": {"text": metric.title, "x": 0.01, "xanchor": "left"}, "height": 380,
        "margin": {"l": 70, "r": 20, "t": 50, "b": 50},
        "xaxis": {"title": {"text": "resolution (px, square input)"}, "type": "log"},
        "yaxis": {"title": {"text": metric.ylabel}, "type": "log" if metric.log else "linear"},
        "hovermode": "closest", "legend": {"font": {"size": 11}},
    }


def essay(machines: list[Machine]) -> dict:
    """The index page's data: per machine and choice of task, batch, precision and compile mode, the report's
    best setting of each model x resolution (the fastest over the remaining axes: attention kernel, layout)."""
    groups = []
    for machine in machines:
        by_choice: dict[tuple, list[Result]] = {}
        for result in machine.results.values():
            by_choice.setdefault(_choice_key(result), []).append(result)
        order = sorted(by_choice, key=lambda k: (_order(TASKS, k[0]), k[1], _order(PRECISIONS, k[2]),
                                                 _order(COMPILE_MODES, k[3])))
        for task, batch, precision, compile_mode in order:
            bests = best_settings(by_choice[(task, batch, precision, compile_mode)])
            groups.append({
                "machine": machine.key, "task": task, "batch": batch, "precision": precision,
                "compile_mode": compile_mode, "resolutions": sorted({b.resolution for b in bests.values()}),
                "traces": {m.key: _essay_traces(m, bests, _unit(m)) for m in ESSAY_METRICS[task]},
                "failures": _failures(bests),
            })
    return {
        "axes": list(AXES), "axis_labels": AXIS_LABELS,
        "machines": {m.key: _machine_summary(m) for m in machines},
        "toggles": [{"key": key, "label": label, "prefix": prefix} for key, label, prefix in TOGGLES],
        "task_metrics": {task: [m.key for m in metrics] for task, metrics in ESSAY_METRICS.items()},
        "metrics": {m.key: {"layout": _essay_layout(m), "empty": f"not measured: {m.unmeasured}"}
                    for metrics in ESSAY_METRICS.values() for m in metrics},
        "groups": groups,
    }


def _unit(metric: Metric) -> str:
    return metric.ylabel.split(" (")[0]


def _machine_summary(machine: Machine) -> dict:
    commit = (machine.commit or "no commit")[:10] + (" (dirty tree)" if machine.dirty else "")
    run_time = machine.newest[-1][0].run_time or "unknown time"
    return {"label": machine.label, "note": f"{machine.label} — commit {commit}, {len(machine.newest)} run(s), "
                                            f"newest at {run_time}"}


# ------------------------------------------------------------------------------------------------ history pages


@dataclass
class SettingHistory:
    """One setting on one machine over commits: its series (one per metric), their change points and verdicts."""

    machine: str
    setting_id: str
    series: list[Series]
    findings: list[check.Finding] = field(default_factory=list)

    @property
    def path(self) -> str:
        """The page, relative to the site's root."""
        return f"settings/{safe_name(self.machine)}/{safe_name(self.setting_id)}.html"

    @property
    def commits(self) -> list[tuple[str, str]]:
        """(commit, time) of every commit any of its metrics was measured at, in commit order."""
        seen = {p.commit: p.commit_time for s in self.series for p in s.points}
        return sorted(seen.items(), key=lambda kv: (order_key(kv[1]), kv[0]))

    @property
    def failing(self) -> list[check.Finding]:
        return [f for f in self.findings if f.fails]


def setting_histories(series: list[Series], found: list[check.Finding]) -> list[SettingHistory]:
    """The series grouped by machine and setting, with their findings (`check.findings` of the same series)."""
    pages: dict[tuple[str, str], SettingHistory] = {}
    for one in series:
        pages.setdefault((one.machine, one.setting_id), SettingHistory(one.machine, one.setting_id, [])) \
            .series.append(one)
    for finding in found:
        s = finding.change.series
        pages[(s.machine, s.setting_id)].findings.append(finding)
    return [pages[k] for k in sorted(pages)]


def change_range(change: Change) -> str:
    """The commits around a step as `history check` writes them: last good..first bad."""
    return f"{change.last_good[:10]}..{change.first_bad[:10]}"


def change_size(change: Change) -> str:
    return f"{(change.ratio - 1) * 100:+.1f}%"


def verdicts(found: Iterable[check.Finding]) -> list[str]:
    """The verdict word of each finding, exactly as `vitcnn history check` prints it."""
    return [check.verdict(f) for f in found]


def confirmations(found: Iterable[check.Finding]) -> list[str]:
    """What confirmed each finding, or why nothing did, exactly as `vitcnn history check` prints it."""
    return [f.confirmation.label for f in found]


def history_figures(page: SettingHistory) -> list[dict]:
    """One Plotly figure per metric: the per-commit value (median of its runs), each run's own value when there
    are several, the level of each segment, and a line with the commit range and size at every change point."""
    commits = page.commits
    position = {commit: i for i, (commit, _) in enumerate(commits)}
    ticks = {"tickvals": list(range(len(commits))), "ticktext": [c[:7] for c, _ in commits]}
    figures = []
    for series in sorted(page.series, key=lambda s: list(HISTORY_METRICS).index(s.metric.name)):
        metric = series.metric
        steps = [f for f in page.findings if f.change.series is series]
        words = {id(f): f"{word}<br>{label}" for f, word, label in zip(steps, verdicts(steps), confirmations(steps))}
        x = [position[p.commit] for p in series.points]
        data = [{
            "type": "scatter", "mode": "lines+markers", "name": f"{metric.label} (median of runs)",
            "x": x, "y": [p.value * metric.scale for p in series.points],
            "text": [f"commit {p.commit}<br>{p.commit_time}<br>{len(p.values)} run(s): {', '.join(p.run_keys)}"
                     for p in series.points],
            "hovertemplate": f"%{{text}}<br>%{{y:.4g}} {metric.unit}<extra></extra>",
            "line": {"color": PALETTE[0]},
        }]
        runs = [(position[p.commit], v * metric.scale) for p in series.points if len(p.values) > 1 for v in p.values]
        if runs:
            data.append({"type": "scatter", "mode": "markers", "name": "each run", "x": [r[0] for r in runs],
                         "y": [r[1] for r in runs], "marker": {"color": "#999", "size": 5},
                         "hovertemplate": f"%{{y:.4g}} {metric.unit}<extra>one run</extra>"})
        if steps:
            data.append(_levels(series, [f.change for f in steps], position))
        shapes, notes = [], []
        for finding in steps:
            change = finding.change
            at = (position[change.last_good] + position[change.first_bad]) / 2
            color = "#7f7f7f" if not finding.confirmation.confirmed else "#d62728" if finding.regression else \
                "#2ca02c" if change.ratio < 1 else "#7f7f7f"
            shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": at, "x1": at, "y0": 0, "y1": 1,
                           "line": {"color": color, "width": 2, "dash": "dot"}, "name": change_range(change)})
            notes.append({"xref": "x", "yref": "paper", "x": at, "y": 1, "yanchor": "bottom", "showarrow": False,
                          "text": f"{change_range(change)} {change_size(change)}<br>{words[id(finding)]}",
                          "font": {"color": color, "size": 11}})
        figures.append({"div": f"plot-{metric.name}", "data": data, "layout": {
            "title": {"text": f"{metric.label} ({metric.unit})", "x": 0.01, "xanchor": "left", "y": 0.97},
            "height": 340,
            "margin": {"l": 70, "r": 20, "t": 80, "b": 70}, "showlegend": True, "hovermode": "closest",
            "xaxis": {"title": {"text": "commit (oldest first)"}, "tickangle": -45, "zeroline": False, **ticks,
                      "range": [-0.5, len(commits) - 0.5]},
            "yaxis": {"title": {"text": metric.unit}}, "shapes": shapes, "annotations": notes,
        }})
    return figures


def _levels(series: Series, steps: list[Change], position: dict[str, int]) -> dict:
    """The median level of each segment between change points, as one broken horizontal line."""
    steps = sorted(steps, key=lambda c: c.index)
    bounds = [0, *(c.index for c in steps), len(series.points)]
    levels = [steps[0].before, *(c.after for c in steps)]
    x: list[float | None] = []
    y: list[float | None] = []
    for (start, end), level in zip(itertools.pairwise(bounds), levels):
        x += [position[series.points[start].commit] - 0.3, position[series.points[end - 1].commit] + 0.3, None]
        y += [level * series.metric.scale] * 2 + [None]
    return {"type": "scatter", "mode": "lines", "name": "segment level (median)", "x": x, "y": y,
            "line": {"color": "#ff7f0e", "width": 2}, "hoverinfo": "skip"}


def tolerances() -> dict[str, float]:
    """Each history metric's default tolerance: a change point growing it by more is a regression."""
    return {m.label: m.tolerance for m in HISTORY_METRICS.values()}


def claims(machine: Machine) -> list[Claim]:
    """The essay's claims on a machine's newest results, checked as the report checks them (report/analysis.py):
    inference and training steps each with their own best settings."""
    infer = [r for r in machine.results.values() if r.setting.task == "infer"]
    train = [r for r in machine.results.values() if r.setting.task == "train"]
    return check_claims(infer, best_settings(infer), best_settings(train))
