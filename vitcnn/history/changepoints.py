"""Change points of a series over commits, found by ruptures (PELT), and which of them are regressions.

The detector works on log values, so a step is a ratio whatever the metric's scale, with the l1 cost (distance to
a segment's median), so one wild run cannot buy a segment of its own as it can under l2. Its penalty is
`PENALTY_BETA * sigma * log(n)`, sigma being the noise of one point estimated robustly from the differences of
neighbours (a step moves one difference, not their median absolute size), floored at `SIGMA_FLOOR` so an exactly
repeatable metric (memory, FLOPs) still needs a real step. `MIN_SEGMENT` points on each side of a change: a single
odd commit is noise until the next commit measures the same. PENALTY_BETA was chosen by simulation for a false-alarm
rate under 1% of flat series of 30 commits with Gaussian or heavy-tailed noise (measured 0.3% over 300 seeds by
scripts/evaluate-changepoints.py; beta 2.0 would give ~1-2% and confirm a step at the newest commits sooner);
docs/history.md says why ruptures and not Apache Otava.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np
import ruptures

from vitcnn.history.series import Series

PENALTY_BETA = 2.5
SIGMA_FLOOR = 0.002  # log units: 0.2% of the value
MIN_SEGMENT = 2


@dataclass(frozen=True)
class Change:
    """A step between two commits of a series: the levels (medians) of the segments either side."""

    series: Series
    index: int  # first point after the step
    before: float
    after: float

    @property
    def ratio(self) -> float:
        return self.after / self.before if self.before else math.inf

    @property
    def last_good(self) -> str:
        return self.series.points[self.index - 1].commit

    @property
    def first_bad(self) -> str:
        return self.series.points[self.index].commit

    def is_regression(self, tolerance: float | None = None) -> bool:
        """Higher is worse for every tracked metric; `tolerance` defaults to the metric's."""
        tol = self.series.metric.tolerance if tolerance is None else tolerance
        return self.ratio > 1 + tol


def noise_sigma(logs: np.ndarray) -> float:
    """Robust standard deviation of one point: the median absolute neighbour difference, scaled for a normal."""
    if len(logs) < 3:
        return SIGMA_FLOOR
    diffs = np.abs(np.diff(logs))
    return max(float(np.median(diffs)) / (0.6745 * math.sqrt(2)), SIGMA_FLOOR)


def breakpoints(values: list[float]) -> list[int]:
    """Indices where a new segment starts (PELT on log values, l1 cost); [] for a series too short to split."""
    if len(values) < 2 * MIN_SEGMENT or any(v <= 0 for v in values):
        return []
    logs = np.log(np.asarray(values, dtype=float))
    penalty = PENALTY_BETA * noise_sigma(logs) * math.log(len(logs))
    ends = ruptures.Pelt(model="l1", min_size=MIN_SEGMENT, jump=1).fit(logs.reshape(-1, 1)).predict(pen=penalty)
    return [end for end in ends if end < len(values)]


def changes(series: Series) -> list[Change]:
    """The series' change points, oldest first, each with the median level of its segments."""
    values = series.values
    cuts = breakpoints(values)
    bounds = [0, *cuts, len(values)]
    levels = [statistics.median(values[a:b]) for a, b in zip(bounds, bounds[1:])]
    return [Change(series, cut, levels[i], levels[i + 1]) for i, cut in enumerate(cuts)]
