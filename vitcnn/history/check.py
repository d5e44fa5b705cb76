"""`vitcnn history check`: the change points of every series, which are regressions, whether each is confirmed,
and whether a series ends in a confirmed one.

A change point of a timed series (latency, compile time) may be the machine's: it counts only when the evidence
of vitcnn/history/confirm.py confirms it (the instruction count stepped too, or `--confirm ab`'s A/B found the
setting slower); a deterministic series (instructions, activation memory) confirms itself. A series fails the check
when its latest confirmed regression is still in effect: its newest level is more than the tolerance above the
level before that regression. Unconfirmed change points are passed over (listed with their label); a confirmed
slowdown that later changes undid no longer fails but stays listed; one only partly undone (+50%, then -13%) still
fails. A change needs MIN_SEGMENT commits measured on each side (changepoints.py), so a regression at the newest
commit is found once the next one is measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vitcnn import table
from vitcnn.history import confirm
from vitcnn.history.changepoints import Change, changes
from vitcnn.history.confirm import Confirmation
from vitcnn.history.series import Series
from vitcnn.runfile import order_key


@dataclass(frozen=True)
class Finding:
    change: Change
    regression: bool
    latest: bool  # the last change point of its series
    fails: bool  # the latest confirmed regression of a series that ends above its level before it
    in_effect: bool  # a regression whose series still ends more than the tolerance above its level before it
    confirmation: Confirmation


def findings(series: list[Series], tolerance: float | None = None, evidence: list[Series] | None = None,
             ab: Callable[[Change], Confirmation] | None = None) -> list[Finding]:
    """Every change point of every series, newest first (by the commit after the step), each with its
    confirmation. `evidence` are the series a change point may be confirmed by (default: `series`; give every
    series of the store when `series` is a selection). `ab` (`--confirm ab`) is asked about the regressions still
    in effect that the store does not confirm, newest first per series, until one is confirmed: only they can
    fail a series, and an A/B costs minutes."""
    by_key = confirm.index(series if evidence is None else evidence)
    found = []
    for one in series:
        steps = changes(one)
        tol = one.metric.tolerance if tolerance is None else tolerance
        regressions = [i for i, c in enumerate(steps) if c.is_regression(tolerance)]
        in_effect = {i for i in regressions if steps[-1].after > steps[i].before * (1 + tol)}
        said = [confirm.from_store(c, by_key, offer_ab=ab is None and i in in_effect) for i, c in enumerate(steps)]
        reference = None  # the latest confirmed regression
        for i in reversed(regressions):
            if not said[i].confirmed and ab is not None and i in in_effect and one.metric.ab_label:
                said[i] = confirm.combined(said[i], ab(steps[i]))
            if said[i].confirmed:
                reference = i
                break
        found += [Finding(c, i in regressions, i == len(steps) - 1, i == reference and i in in_effect,
                          i in in_effect, said[i]) for i, c in enumerate(steps)]
    return sorted(found, key=lambda f: order_key(f.change.series.points[f.change.index].commit_time), reverse=True)


HEADER = ("verdict", "machine", "setting", "metric", "commits (last good..first bad)", "before", "after", "change",
          "confirmation")
UNCONFIRMED_REGRESSION = "regression (not confirmed)"


def verdict(f: Finding) -> str:
    """REGRESSION fails the check; a regression still in effect that nothing confirmed does not."""
    if f.fails:
        return "REGRESSION"
    if f.regression:
        return UNCONFIRMED_REGRESSION if f.in_effect and not f.confirmation.confirmed else "regression (undone later)"
    return "improvement" if f.change.ratio < 1 else "change within tolerance"


def rows(found: list[Finding]) -> list[list[str]]:
    out = []
    for f in found:
        c, metric = f.change, f.change.series.metric
        out.append([verdict(f), c.series.machine, c.series.setting_id, metric.label,
                    f"{c.last_good[:10]}..{c.first_bad[:10]}", f"{c.before * metric.scale:.4g} {metric.unit}",
                    f"{c.after * metric.scale:.4g} {metric.unit}", f"{(c.ratio - 1) * 100:+.1f}%",
                    f.confirmation.label])
    return out


def render(found: list[Finding], markdown: bool = False) -> str:
    if not found:
        return "no change points in any series\n"
    body = rows(found)
    return (table.markdown(HEADER, body, right=(5, 6, 7)) if markdown else table.text(HEADER, body, right=(5, 6, 7))) \
        + "\n"


def summary(found: list[Finding]) -> str:
    """The last line of `history check`: how many change points, confirmed, and series failing or held back."""
    failing = sum(f.fails for f in found)
    held = sum(verdict(f) == UNCONFIRMED_REGRESSION for f in found)
    confirmed = sum(f.confirmation.confirmed for f in found)
    return (f"{len(found)} change point(s), {confirmed} confirmed; {failing} series ending in a regression; "
            f"{held} regression(s) not confirmed (they do not fail)")
