"""`vitcnn bisect`: the first candidate (a commit, or an interpreter) that made a setting worse, found by binary
search where every step is a `vitcnn ab` of the candidate against the last one known good.

Unlike a search on single measurements (asv's `find`), a step is taken only on an A/B's verdict: `slower` (or any
regression label) moves the bad bound, a settled `same` (or `faster`) moves the good one, and an `inconclusive`
is asked again with more processes per side (probe.settle). A probe that still cannot tell ends the search with the
range that remains; no candidate is named then. A candidate whose setting cannot run is skipped, the next one
nearest the middle probed instead (as `git bisect skip`). Before the search, the bad end is probed against the good
end: a regression that is not there is not searched for. After it, the two neighbours are probed against each
other, unless the search already did: the named candidate's own verdict row and explanation.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vitcnn.ab.probe import BAD, FAILED, GOOD, UNDECIDED, Probe

FOUND, NOT_FOUND, NO_REGRESSION = "found", "not found", "no regression"


@dataclass(frozen=True)
class Candidate:
    """One step of the search: a commit (`ref`) or an interpreter (`python`), and how it is shown."""

    label: str
    ref: str | None = None
    python: str | None = None


@dataclass
class Step:
    """One probe of the search: B (the candidate) against A (a known-good bound), and what it said."""

    good: int
    candidate: int
    probe: Probe
    role: str  # "ends", "search" or "neighbours"


@dataclass
class Outcome:
    """How the search ended: FOUND (first_bad named, last_good its predecessor), NOT_FOUND (a probe could not tell,
    or every candidate between was skipped: the range last_good..first_bad remains) or NO_REGRESSION (the bad end
    did not read worse than the good end)."""

    status: str
    candidates: list[Candidate]
    last_good: int
    first_bad: int
    steps: list[Step] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    reason: str = ""

    @property
    def decisive(self) -> Step | None:
        """The probe of first_bad against last_good, where there is one."""
        return next((s for s in reversed(self.steps)
                     if (s.good, s.candidate) == (self.last_good, self.first_bad)), None)


ProbeFn = Callable[[Candidate, Candidate], Probe]


def search(candidates: Sequence[Candidate], probe: ProbeFn) -> Outcome:
    """Binary search over `candidates` (the first known good, the last bad) with `probe(good, candidate)`."""
    if len(candidates) < 2:
        raise ValueError("bisect needs a good and a bad candidate")
    lo, hi = 0, len(candidates) - 1
    outcome = Outcome(NOT_FOUND, list(candidates), lo, hi)

    def ask(good: int, candidate: int, role: str) -> str:
        result = probe(candidates[good], candidates[candidate])
        outcome.steps.append(Step(good, candidate, result, role))
        return result.answer

    answer = ask(lo, hi, "ends")
    if answer != BAD:
        outcome.status = NO_REGRESSION if answer == GOOD else NOT_FOUND
        outcome.reason = {GOOD: "the bad end is not worse than the good end",
                          UNDECIDED: "the probe of the bad end against the good end stayed inconclusive",
                          FAILED: "the probe of the bad end against the good end did not run"}[answer]
        return outcome
    while hi - lo > 1:
        mid = _middle(lo, hi, outcome.skipped)
        if mid is None:
            outcome.reason = f"every candidate between {candidates[lo].label} and {candidates[hi].label} was skipped"
            break
        answer = ask(lo, mid, "search")
        if answer == BAD:
            hi = mid
        elif answer == GOOD:
            lo = mid
        elif answer == FAILED:
            outcome.skipped.append(mid)
        else:
            outcome.reason = (f"the probe of {candidates[mid].label} against {candidates[lo].label} stayed "
                              f"inconclusive with the most processes allowed")
            break
    outcome.last_good, outcome.first_bad = lo, hi
    if hi - lo > 1:
        return outcome
    if outcome.decisive is None:
        answer = ask(lo, hi, "neighbours")
        if answer != BAD:
            outcome.reason = (f"{candidates[hi].label} against its predecessor {candidates[lo].label} reads "
                              f"{'not worse' if answer == GOOD else answer}: the slowdown may be spread over several "
                              f"candidates, or within the noise of one step")
            return outcome
    outcome.status = FOUND
    return outcome


def _middle(lo: int, hi: int, skipped: list[int]) -> int | None:
    """The untried candidate strictly between lo and hi nearest the middle (None: all skipped)."""
    mid = (lo + hi) // 2
    inside = [i for i in range(lo + 1, hi) if i not in skipped]
    return min(inside, key=lambda i: (abs(i - mid), i)) if inside else None


def commits(good: str, bad: str, repo: Path) -> list[Candidate]:
    """`good`, then the first-parent commits of `bad` after it, oldest first, as candidates; a range that is not
    one (good not on bad's first-parent line, an unknown ref, nothing between) is a ValueError."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise ValueError(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout.strip()

    good_sha, bad_sha = git("rev-parse", "--verify", f"{good}^{{commit}}"), git("rev-parse", "--verify",
                                                                               f"{bad}^{{commit}}")
    line = git("rev-list", "--first-parent", bad_sha).split()  # bad's first-parent line, newest first
    if good_sha not in line:
        raise ValueError(f"--good {good} is not on the first-parent line of --bad {bad} (give a commit of that line)")
    after = line[:line.index(good_sha)][::-1]
    if not after:
        raise ValueError(f"no commit between --good {good} and --bad {bad}")
    subjects = {sha: git("log", "-1", "--format=%h %s", sha) for sha in [good_sha, *after]}
    return [Candidate(subjects[sha], ref=sha) for sha in [good_sha, *after]]


def interpreters(pythons: Sequence[str]) -> list[Candidate]:
    """Interpreters (each its own torch build, say), the first good, the last bad."""
    if len(pythons) < 2:
        raise ValueError("--pythons needs at least two interpreters, the good one first")
    return [Candidate(python, python=python) for python in pythons]


def render(outcome: Outcome) -> str:
    """The search, probe by probe, and its conclusion."""
    c = outcome.candidates
    lines = [f"vitcnn bisect: {len(c)} candidates, {c[0].label} (good) .. {c[-1].label} (bad)", ""]
    for i, step in enumerate(outcome.steps, 1):
        rows = step.probe.regressions() or step.probe.rows
        worst = "; ".join(f"{r['id']}: {'/'.join(r['verdict']['labels'])} {_ratio(r)}" for r in rows[:3])
        lines.append(f"probe {i} ({step.role}): {c[step.candidate].label} against {c[step.good].label}: "
                     f"{step.probe.answer.upper()} ({step.probe.processes} processes per side at most) {worst}")
    for i in outcome.skipped:
        lines.append(f"skipped {c[i].label}: its setting did not run")
    lines.append("")
    if outcome.status == FOUND:
        lines.append(f"first bad: {c[outcome.first_bad].label} (last good: {c[outcome.last_good].label})")
    elif outcome.status == NO_REGRESSION:
        lines.append(f"no regression to search for: {outcome.reason}")
    else:
        lines.append(f"not found: {outcome.reason}; the first bad candidate is after {c[outcome.last_good].label} "
                     f"and at or before {c[outcome.first_bad].label}")
    return "\n".join(lines) + "\n"


def _ratio(row: dict) -> str:
    v = row["verdict"]
    if v.get("ratio") is None:
        return ""
    ci = v.get("ci") or [None, None]
    return f"B/A {v['ratio']:.3f}" + (f" ({ci[0]:.3f}-{ci[1]:.3f})" if ci[0] is not None else "")


def to_json(outcome: Outcome) -> dict:
    c = outcome.candidates
    return {"schema": 1, "status": outcome.status, "reason": outcome.reason,
            "candidates": [vars(x) for x in c],
            "last_good": c[outcome.last_good].label, "first_bad": c[outcome.first_bad].label,
            "skipped": [c[i].label for i in outcome.skipped],
            "probes": [{"role": s.role, "good": c[s.good].label, "candidate": c[s.candidate].label,
                        "answer": s.probe.answer, "exit_code": s.probe.exit_code, "processes": s.probe.processes,
                        "settings": [{k: v for k, v in row.items() if k != "blocks"} for row in s.probe.rows]}
                       for s in outcome.steps]}

