"""The machines of a store and the newest runs of each: what the site's essay view, claims and machine pages read.

A machine is what vitcnn.history.series calls one (`machine_key`: the fingerprint slug, a first-format run joined
to the complete fingerprint it provably matches), so every page of the site names the same machines. A machine's
newest commit is the commit of its newest run in commit order, and all runs of that commit are merged. Several
runs of one setting are not averaged: the setting keeps the run whose median latency is the median of those runs
(the lower middle of an even count), so every number of a point (images/s, memory, FLOPs, MFU) is one real
measurement, derived by runfile.py as everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vitcnn import fingerprint
from vitcnn.history.series import machine_key, order_key
from vitcnn.history.store import Entry
from vitcnn.report.best import is_timed
from vitcnn.runfile import Result, Run


@dataclass
class Machine:
    """One machine of the store: all its runs (commit order) and the merged results of its newest commit."""

    key: str
    runs: list[tuple[Entry, Run]]
    newest: list[tuple[Entry, Run]]
    results: dict[str, Result] = field(default_factory=dict)

    @property
    def latest_run(self) -> Run:
        return self.newest[-1][1]

    @property
    def label(self) -> str:
        return self.latest_run.device_label

    @property
    def commit(self) -> str | None:
        return self.newest[-1][0].commit

    @property
    def dirty(self) -> bool:
        return bool(self.newest[-1][0].dirty)

    @property
    def fingerprint(self) -> dict:
        return self.latest_run.fingerprint


def machines(runs: list[tuple[Entry, Run]]) -> list[Machine]:
    """Every machine of `runs` (store entries with their runs), the one measured most recently first."""
    complete = {run.slug: run.fingerprint for _, run in runs if fingerprint.is_complete(run.fingerprint)}
    by_machine: dict[str, list[tuple[Entry, Run]]] = {}
    for entry, run in sorted(runs, key=lambda pair: pair[0].order):
        by_machine.setdefault(machine_key(run, complete), []).append((entry, run))
    out = []
    for key, own in by_machine.items():
        newest = newest_runs(own)
        out.append(Machine(key, own, newest, merge_results([run for _, run in newest])))
    return sorted(out, key=lambda m: (max(order_key(e.run_time) for e, _ in m.runs), m.key), reverse=True)


def newest_runs(runs: list[tuple[Entry, Run]]) -> list[tuple[Entry, Run]]:
    """The runs of the newest commit among `runs` (commit order): the same commit id and dirty flag as the newest
    run; a run without a commit stands alone, since nothing says two of them measured the same code."""
    last = runs[-1][0]
    if last.commit is None:
        return [runs[-1]]
    return [(e, r) for e, r in runs if e.commit == last.commit and bool(e.dirty) == bool(last.dirty)]


def merge_results(runs: list[Run]) -> dict[str, Result]:
    """One result per setting id: of its timed results the one with the median median latency; when none is
    timed, the newest run's result (its status and reason say why)."""
    candidates: dict[str, list[Result]] = {}
    for run in runs:
        for sid, result in run.results.items():
            candidates.setdefault(sid, []).append(result)
    merged = {}
    for sid, results in candidates.items():
        timed = sorted((r for r in results if is_timed(r)), key=lambda r: r.median_s)
        merged[sid] = timed[(len(timed) - 1) // 2] if timed else results[-1]
    return merged
