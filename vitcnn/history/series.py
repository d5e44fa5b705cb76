"""A store's runs as series over commits: per machine, setting and metric, one value per commit.

A machine is a fingerprint slug. Runs written before the fingerprint recorded the CPU's kernel features (first
format) have a slug of their own; such a run joins a complete fingerprint's machine only when its first-format
identity matches that fingerprint's AND the kernel features pytest-benchmark's py-cpuinfo record gives for it equal
the fingerprint's (so an AMX and a non-AMX VM of one CPU name stay apart, as the gate keeps them). Several runs of
one commit on one machine become their median, with the count kept.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from vitcnn import cpu_isa, fingerprint
from vitcnn.gate.metrics import HistorySeries, tracked_series
from vitcnn.runfile import Run, order_key

# The series tracked per setting (latency, activation memory, cold and warm compile time), from the gate's table of
# metrics (vitcnn/gate/metrics.py), so the history and the gate name and read a metric one way.
METRICS: dict[str, HistorySeries] = tracked_series()


@dataclass
class Point:
    """One commit of a series: the median of its runs' values, and where they came from."""

    commit: str
    commit_time: str
    value: float
    values: list[float] = field(default_factory=list)
    run_keys: list[str] = field(default_factory=list)


@dataclass
class Series:
    machine: str
    setting_id: str
    metric: HistorySeries
    points: list[Point]

    @property
    def values(self) -> list[float]:
        return [p.value for p in self.points]


def machine_key(run: Run, complete: dict[str, dict]) -> str:
    """The machine a run belongs to: its slug, or for a first-format fingerprint the complete fingerprint's slug
    it provably matches (see the module docstring); `complete` maps slugs to complete fingerprints in the store."""
    fp = run.fingerprint
    if fingerprint.is_complete(fp):
        return run.slug
    cpu = run.machine_cpu
    features = cpu_isa.from_pytest_benchmark(cpu)["cpu_features"] if cpu and cpu.get("flags") else None
    for slug, full in sorted(complete.items()):
        legacy = {k: v for k, v in full.items() if k not in fingerprint.ADDED_IN_V2 and k != "identity_version"}
        if fingerprint.identity(legacy) == fingerprint.identity(fp) and features is not None and \
                features == full.get("cpu_features") and fp.get("device") != "cuda":
            return slug
    return run.slug


def build(runs: Iterable[tuple[str, Run]], metrics: Iterable[str] = tuple(METRICS)) -> list[Series]:
    """Series for every (machine, setting, metric) with a value in some run; `runs` are (store key, run) pairs in
    commit order. Runs from a dirty tree or without a commit are left out: no commit to place them at."""
    runs = [(key, run) for key, run in runs if run.code.get("commit") and not run.code.get("dirty")]
    complete = {run.slug: run.fingerprint for _, run in runs if fingerprint.is_complete(run.fingerprint)}
    cells: dict[tuple, dict[str, Point]] = defaultdict(dict)
    for key, run in runs:
        machine = machine_key(run, complete)
        commit, when = run.code["commit"], run.code.get("commit_time") or run.raw.get("datetime") or ""
        for result in run.results.values():
            if result.status != "ok":
                continue
            for name in metrics:
                value = METRICS[name].read(result)
                if value is None:
                    continue
                point = cells[(machine, result.id, name)].setdefault(commit, Point(commit, when, 0.0))
                point.values.append(float(value))
                point.run_keys.append(key)
    series = []
    for (machine, setting_id, name), points in sorted(cells.items()):
        ordered = sorted(points.values(), key=lambda p: order_key(p.commit_time))
        for point in ordered:
            point.value = statistics.median(point.values)
        series.append(Series(machine, setting_id, METRICS[name], ordered))
    return series
