"""Whether a change point is the code's or the machine's: the evidence `vitcnn history check` weighs before a
regression may fail it.

A timed series (latency, compile time) moves with the machine as well as with the code: on a shared VM the machine
gets faster or slower over a morning and every setting steps at once (docs/history.md). Its change point counts
only when a measurement the machine cannot move says the same:
- the instruction count of the same setting on the same machine (`history run --metric instructions`): confirmed
  when the count also stepped between the same two commits, beyond its tolerance, the same way; machine drift when
  it stayed within its tolerance there;
- an interleaved `vitcnn ab` of the two commits (`--confirm ab`): both measured at once on one machine, so the
  drift cancels: confirmed by its slowdown label, machine drift when it says `same` or `faster`.
A deterministic series (instructions, activation memory) is confirmed by itself. Anything else is "not confirmed",
saying what was missing. Which series confirms which is the gate's table of metrics (vitcnn/gate/metrics.py).
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vitcnn.history.changepoints import Change
from vitcnn.history.series import Series
from vitcnn.runfile import Run

if TYPE_CHECKING:
    from vitcnn.ab.design import ABOptions
    from vitcnn.ab.probe import Probe

CONFIRMED, DRIFT, UNCONFIRMED = "confirmed", "machine drift", "not confirmed"
AB_HINT = "use --confirm ab"


@dataclass(frozen=True)
class Confirmation:
    """What the evidence says about one change point: CONFIRMED (the code), DRIFT (the evidence says the code did
    not change it) or UNCONFIRMED (no evidence either way), and the evidence in words."""

    state: str
    evidence: str

    @property
    def confirmed(self) -> bool:
        return self.state == CONFIRMED

    @property
    def label(self) -> str:
        """What the table and the site say, e.g. "confirmed by instructions +6.10%", "machine drift, not confirmed
        (instructions flat, +0.02%)", "not confirmed (no instructions series; use --confirm ab)"."""
        if self.state == CONFIRMED:
            return f"confirmed by {self.evidence}"
        if self.state == DRIFT:
            return f"machine drift, not confirmed ({self.evidence})"
        return f"not confirmed ({self.evidence})"


SELF = Confirmation(CONFIRMED, "itself (deterministic)")
NOTHING = Confirmation(UNCONFIRMED, "no instrument confirms this timed metric")

Key = tuple[str, str, str]  # machine, setting id, metric name


def index(series: Iterable[Series]) -> dict[Key, Series]:
    """The series by machine, setting and metric: where a change point looks for its confirming series."""
    return {(s.machine, s.setting_id, s.metric.name): s for s in series}


def by_counts(change: Change, counts: Series | None, offer_ab: bool = False) -> Confirmation:
    """A timed change point against the confirming series (`counts`, e.g. instructions) of its machine and setting:
    did the count step between the change's last good and first bad commit, beyond the count's own tolerance, the
    same way? `offer_ab`: say that an A/B could decide where the counts cannot."""
    hint = f"; {AB_HINT}" if offer_ab else ""
    if counts is None:
        return Confirmation(UNCONFIRMED, f"no {change.series.metric.confirmed_by} series{hint}")
    at = {p.commit: p.value for p in counts.points}
    missing = [c[:10] for c in (change.last_good, change.first_bad) if c not in at]
    if missing:
        return Confirmation(UNCONFIRMED, f"{counts.metric.name} not counted at {', '.join(missing)}{hint}")
    ratio = at[change.first_bad] / at[change.last_good]
    step = f"{counts.metric.name} {ratio - 1:+.2%}"
    if abs(ratio - 1) <= counts.metric.tolerance:
        return Confirmation(DRIFT, f"{counts.metric.name} flat, {ratio - 1:+.2%}")
    if (ratio > 1) == (change.ratio > 1):
        return Confirmation(CONFIRMED, step)
    return Confirmation(UNCONFIRMED, f"{step}, the other way{hint}")


def from_store(change: Change, series: dict[Key, Series], offer_ab: bool = False) -> Confirmation:
    """What the store itself says about a change point: a deterministic series confirms itself, a timed one needs
    its confirming series (by_counts), a timed one without any is not confirmed."""
    metric = change.series.metric
    if metric.deterministic:
        return SELF
    if metric.confirmed_by is None:
        return NOTHING
    key = (change.series.machine, change.series.setting_id, metric.confirmed_by)
    return by_counts(change, series.get(key), offer_ab and metric.ab_label is not None)


def by_ab(change: Change, probe: Probe) -> Confirmation:
    """A regression against the A/B of its two commits (side A the last good, B the first bad; one setting):
    confirmed by the series' A/B label (`slower` for latency), drift when the A/B found the same or faster, not
    confirmed when it could not tell or did not run."""
    rows = [r for r in probe.rows if r["id"] == change.series.setting_id] or probe.rows
    if probe.exit_code == 2 or not rows:
        return Confirmation(UNCONFIRMED, f"the A/B did not run (exit {probe.exit_code})")
    row = rows[0]
    if set(row["status"].values()) != {"ok"}:
        return Confirmation(UNCONFIRMED, "the A/B did not measure both sides (" +
                            ", ".join(f"{side} {status}" for side, status in sorted(row["status"].items())) + ")")
    verdict = row["verdict"]
    labels, ratio = verdict["labels"], verdict["ratio"]
    wanted = change.series.metric.ab_label
    if wanted in labels:
        return Confirmation(CONFIRMED, f"A/B: {wanted} {ratio - 1:+.1%}")
    if "inconclusive" in labels:
        seen = verdict.get("detectable")
        return Confirmation(UNCONFIRMED, "A/B inconclusive" + (f", could have seen {seen:+.1%}" if seen else ""))
    return Confirmation(DRIFT, f"A/B: {labels[0] if labels else 'no label'} {ratio - 1:+.1%}")


def combined(store: Confirmation, ab: Confirmation) -> Confirmation:
    """The A/B's answer, with what the store said kept beside it."""
    return Confirmation(ab.state, f"{ab.evidence}; {store.evidence.removesuffix(f'; {AB_HINT}')}")


# ------------------------------------------------------------------------------------------------ --confirm ab


def this_machine(device: str) -> str:
    """The slug of this machine measuring on `device`: where an A/B runs (imports torch)."""
    from vitcnn import fingerprint

    return fingerprint.slug(fingerprint.collect(device))


def ab_session(options: ABOptions) -> Probe:
    """One real `vitcnn ab` session, read back as a Probe (vitcnn/ab/probe.py). The session's own table goes to
    stderr with its progress: stdout is the check's table."""
    from vitcnn.ab.probe import probe

    with contextlib.redirect_stdout(sys.stderr):
        return probe(options)


@dataclass
class ABConfirmer:
    """`history check --confirm ab`: confirm a regression by a real `vitcnn ab` of its two commits (A = last good,
    B = first bad), restricted to its setting, with the profile and device of the run that measured the first bad
    commit, and only on the series' own machine (an A/B elsewhere says nothing about that machine's numbers).
    `probe` runs a session (ab_session) and `machine` names this machine for a device (this_machine); tests give
    their own."""

    runs: dict[str, Run]  # store key -> run
    probe: Callable[[ABOptions], Probe]
    machine: Callable[[str], str]
    report: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)

    def __post_init__(self) -> None:
        self.machine = functools.cache(self.machine)

    def __call__(self, change: Change) -> Confirmation:
        from vitcnn.ab.design import ABOptions
        from vitcnn.ab.sides import Side

        point = change.series.points[change.index]
        run = self.runs[point.run_keys[0]]
        result = run.results.get(change.series.setting_id)
        device = run.fingerprint.get("device")
        if result is None or not run.profile or not device:
            return Confirmation(UNCONFIRMED, "no A/B: the run records no setting, profile or device to measure")
        here = self.machine(device)
        if here != change.series.machine:
            return Confirmation(UNCONFIRMED, f"no A/B: the series is of {change.series.machine}, this machine is "
                                             f"{here}")
        self.report(f"vitcnn history check: confirming {change.series.setting_id} at "
                    f"{change.last_good[:10]}..{change.first_bad[:10]} with vitcnn ab")
        options = ABOptions(a=Side("A", ref=change.last_good), b=Side("B", ref=change.first_bad),
                            settings=[result.setting], profile=run.profile, device=device)
        return by_ab(change, self.probe(options))
