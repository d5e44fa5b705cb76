"""`vitcnn history check`: the change points of every series, which are regressions, and whether a series ends in
one.

A series fails the check when it ends in a regression: its newest level is still more than the tolerance above the
level before its latest regression change point. A slowdown that later changes undid no longer fails it but stays
listed; one that a later change only partly undid (+50%, then -13%) still fails. A change needs MIN_SEGMENT commits
measured on each side (changepoints.py), so a regression at the newest commit is confirmed by the next one.
"""

from __future__ import annotations

from dataclasses import dataclass

from vitcnn import table
from vitcnn.history.changepoints import Change, changes
from vitcnn.history.series import Series
from vitcnn.runfile import order_key


@dataclass(frozen=True)
class Finding:
    change: Change
    regression: bool
    latest: bool  # the last change point of its series
    fails: bool  # the latest regression of a series that ends above its level before it


def findings(series: list[Series], tolerance: float | None = None) -> list[Finding]:
    """Every change point of every series, newest first (by the commit after the step)."""
    found = []
    for one in series:
        steps = changes(one)
        regressions = [i for i, c in enumerate(steps) if c.is_regression(tolerance)]
        failing = None
        if regressions:
            latest = steps[regressions[-1]]
            tol = one.metric.tolerance if tolerance is None else tolerance
            if steps[-1].after > latest.before * (1 + tol):  # the newest level, against the level before it
                failing = regressions[-1]
        found += [Finding(c, i in regressions, i == len(steps) - 1, i == failing) for i, c in enumerate(steps)]
    return sorted(found, key=lambda f: order_key(f.change.series.points[f.change.index].commit_time), reverse=True)


HEADER = ("verdict", "machine", "setting", "metric", "commits (last good..first bad)", "before", "after", "change")


def rows(found: list[Finding]) -> list[list[str]]:
    out = []
    for f in found:
        c, metric = f.change, f.change.series.metric
        verdict = "REGRESSION" if f.fails else "regression (undone later)" if f.regression else \
            "improvement" if c.ratio < 1 else "change within tolerance"
        out.append([verdict, c.series.machine, c.series.setting_id, metric.label,
                    f"{c.last_good[:10]}..{c.first_bad[:10]}", f"{c.before * metric.scale:.4g} {metric.unit}",
                    f"{c.after * metric.scale:.4g} {metric.unit}", f"{(c.ratio - 1) * 100:+.1f}%"])
    return out


def render(found: list[Finding], markdown: bool = False) -> str:
    if not found:
        return "no change points in any series\n"
    body = rows(found)
    return table.markdown(HEADER, body, right=(5, 6, 7)) if markdown else table.text(HEADER, body, right=(5, 6, 7))
