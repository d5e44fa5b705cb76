"""The report's torch.compile section: what compiling cost and bought, per compiled setting.

Compile time three ways (the first call with the machine's caches as they were, a cold compile with empty
caches, a warm one served from them), Dynamo's graphs, graph breaks and recompiles, and the eager twin's speedup
over eager with its interval and memory compression (eager activation peak / compiled). The figure of speedup
against resolution is drawn by figures.py from the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from vitcnn import table
from vitcnn.report.best import model_order
from vitcnn.runfile import Result

SPEEDUP_FIGURE = "speedup-vs-eager-{slug}.png"


class SpeedupPoint(NamedTuple):
    """One compiled setting's speedup over eager, for the figure: a line per (model, batch, task)."""

    model: str
    batch: int
    task: str
    resolution: int
    speedup: float
    ci_low: float | None
    ci_high: float | None


def compiled_results(results: Mapping[str, Result]) -> list[Result]:
    """Compiled settings that ran, in the report's order (model, resolution, batch)."""
    ran = [r for r in results.values() if r.status == "ok" and r.setting.compile_mode != "eager"]
    return sorted(ran, key=lambda r: (model_order(r.setting.model), r.setting.resolution, r.setting.batch, r.id))


def speedup_points(results: Mapping[str, Result]) -> list[SpeedupPoint]:
    return [SpeedupPoint(r.setting.model, r.setting.batch, r.setting.task, r.setting.resolution,
                         r.get("speedup_vs_eager"), r.get("speedup_ci_low"), r.get("speedup_ci_high"))
            for r in compiled_results(results) if r.get("speedup_vs_eager") is not None]


def _interval(result: Result) -> str | None:
    speedup, low, high = (result.get(k) for k in ("speedup_vs_eager", "speedup_ci_low", "speedup_ci_high"))
    if speedup is None:
        return None
    bounds = "unbounded" if low is None or high is None else f"{low:.2f}–{high:.2f}"
    return f"{table.times(speedup)} ({bounds})"


def compile_markdown(results: Mapping[str, Result], slug: str) -> str | None:
    """The section's table (None when no compiled setting ran) and the figure's link when speedups exist."""
    rows = [[r.id, table.num(r.get("compile_time_s")), table.num(r.get("compile_cold_s")),
             table.num(r.get("compile_warm_s")), r.get("graphs"), r.get("graph_breaks"), r.get("recompiles"),
             _interval(r), table.times(r.get("memory_compression"), missing=None)]
            for r in compiled_results(results)]
    if not rows:
        return None
    header = ["Setting", "Compile (s)", "Cold (s)", "Warm (s)", "Graphs", "Breaks", "Recompiles",
              "Speedup vs eager (95% CI)", "Memory compression"]
    text = table.markdown(header, rows, right=range(1, 9))
    text = ("Compile: the first call with this machine's caches as they were; cold: empty caches; warm: a second "
            "compile served from them. Speedup: eager time / compiled time, paired blocks in one process. Memory "
            "compression: eager activation peak / compiled.\n\n" + text)
    if speedup_points(results):  # the rule figures.py draws the figure by
        text += f"\n\n[figure: speedup over eager vs resolution]({SPEEDUP_FIGURE.format(slug=slug)})"
    return text
