"""Grouping runs by machine and picking the best setting of every model x resolution x batch.

A "best" point is the fastest ok setting (lowest median latency) of one model x resolution x batch. Failed
settings (oom, error, skipped) never win, but they are counted, shown in the full table and marked in figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from vitcnn.runfile import STATUSES, Result, Run
from vitcnn.zoo import models

Point = tuple[str, int, int]  # (model, resolution, batch)
TIE_RULE = "ties in median latency go to the lexicographically smallest setting id"


@dataclass
class Device:
    """All results of one machine identity (fingerprint slug), merged over the runs that share it."""

    slug: str
    label: str
    fingerprint: dict
    paths: list[str] = field(default_factory=list)
    selections: list[str] = field(default_factory=list)  # each run's profile and what narrowed it
    results: dict[str, Result] = field(default_factory=dict)
    machine_cpu: dict | None = None  # pytest-benchmark's CPU record (py-cpuinfo), for older fingerprints


def group_runs(runs: Iterable[Run]) -> list[Device]:
    """One Device per fingerprint slug, in order of first appearance; a later run wins for the same setting id."""
    devices: dict[str, Device] = {}
    for run in runs:
        device = devices.setdefault(run.slug, Device(run.slug, run.device_label, run.fingerprint))
        device.fingerprint, device.machine_cpu = run.fingerprint, run.machine_cpu
        device.paths.append(run.path)
        if run.selection and run.selection not in device.selections:
            device.selections.append(run.selection)
        device.results.update(run.results)
    return list(devices.values())


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
        return self.result.images_per_s if self.result is not None else None


def is_timed(result: Result) -> bool:
    """Whether a result can compete for best: ok, with a finite positive median latency."""
    median = result.median_s
    return result.status == "ok" and isinstance(median, (int, float)) and math.isfinite(median) and median > 0


def as_results(results: Iterable[Result] | Mapping[str, Result]) -> list[Result]:
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
    points = _by_point(as_results(results))
    return {point: _best_of(point, rs) for point, rs in sorted(points.items(), key=lambda kv: point_key(kv[0]))}


def model_order(model: str) -> tuple[int, str]:
    names = models.names()
    return (names.index(model) if model in names else len(names), model)


def point_key(point: Point) -> tuple:
    model, res, batch = point
    return (batch, res, model_order(model))


def family(model: str) -> str:
    try:
        return models.spec(model).family
    except ValueError:
        return "?"


def fairness_notes(bests: Mapping[Point, Best]) -> list[str]:
    """Points where ViTs and CNNs were given different numbers of candidates (a best-of favours more tries)."""
    counts: dict[tuple[int, int], dict[str, set[int]]] = {}
    for best in bests.values():
        by_family = counts.setdefault((best.resolution, best.batch), {})
        by_family.setdefault(family(best.model), set()).add(best.candidates)
    notes = []
    for (res, batch), by_family in sorted(counts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        vit, cnn = by_family.get("vit"), by_family.get("cnn")
        if vit and cnn and (vit != cnn or len(vit) > 1):
            notes.append(f"{res} px, batch {batch}: ViTs had {_counts_text(vit)} candidates, CNNs {_counts_text(cnn)}")
    return notes


def _counts_text(values: set[int]) -> str:
    return "/".join(str(v) for v in sorted(values))
