"""Speed rules: which evidence decides `slower` / `faster` / `same` / `inconclusive`, one rule per kind of comparison.

The compare core (vitcnn/gate/rules.py) asks a speed rule for the first label of every setting that ran on both
sides, then adds the deterministic metrics' findings (memory, instructions, compile counts) and the session's:
- OneRun: the samples of one run against another's (one-sided Mann-Whitney U) beyond a tolerance that is never
  tighter than a recorded run-to-run spread;
- StoredRuns (vitcnn/gate/stored.py): the stored gate on every device, saved runs as the unit, one run's samples
  only where the saved runs showed that they predict the next run;
- Interleaved: an A/B's timed blocks, processes as the unit (vitcnn/gate/paired.py);
- Counted: no timing at all; an A/B by instruction counts, whose first label is the count's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np
from scipy import stats

from vitcnn.gate import instructions, paired
from vitcnn.gate.comparison import percent
from vitcnn.gate.metrics import INSTRUCTIONS, SPEED, Finding, GateOptions, Metric
from vitcnn.result import Result

MIN_SAMPLES = 3  # fewer raw samples on a side and no significance test is attempted
# A run further than this from its saved runs is slower (or faster) however few saves there are, and however
# wide their t bound: separate runs of one setting on the 2-core VMs differed by up to 1.8x (DESIGN.md, rule 15;
# whole processes 10-60%), and the bound with 2 degrees of freedom can allow far more (a planted 9x slowdown read
# `same` against three saves 20-50% apart). A factor, not a statistic: what no quiet machine has shown.
FAR = 2.0


class SpeedFinding(NamedTuple):
    """A speed rule's finding for one setting: the Finding, and for an A/B its interval, the slowdown it could
    have detected and its processes per side; `caveat` is said after the setting's other findings (why a speed
    label was not gated)."""

    found: Finding
    ci_low: float | None = None
    ci_high: float | None = None
    detectable: float | None = None
    processes: int | None = None
    caveat: str = ""


Pair = tuple[int, Result, Result]  # (its index in the comparison, base, new) of a setting both sides ran ok


class SpeedRule(Protocol):
    """Decides the first label of every setting both sides ran (by the pair's index); `primary` is the metric that
    label is about."""

    primary: Metric

    def findings(self, pairs: Sequence[Pair], options: GateOptions) -> dict[int, SpeedFinding]: ...


def run_to_run_spread(medians: list[float]) -> float:
    """max/min - 1 over a setting's saved-run medians (0 with fewer than two): the noise one run cannot show."""
    if len(medians) < 2 or min(medians) <= 0:
        return 0.0
    return max(medians) / min(medians) - 1


def _p_value(base: list[float], new: list[float], alternative: str) -> float | None:
    """One-sided Mann–Whitney U p-value that `new` is stochastically greater/less than `base`; None if too few."""
    if len(base) < MIN_SAMPLES or len(new) < MIN_SAMPLES:
        return None
    p = float(stats.mannwhitneyu(new, base, alternative=alternative).pvalue)
    return None if math.isnan(p) else p


def mann_whitney(base: Result, new: Result, options: GateOptions, spread: float = 0.0) -> Finding:
    """Speed label of one run's samples against another's: `slower`/`faster` only when the median moved by more
    than the tolerance AND the one-sided Mann–Whitney U test is significant; a big move without significance is
    `inconclusive`, a small one `same`. The tolerance is never tighter than `spread` (run_to_run_spread)."""
    b, n = base.median_s, new.median_s
    if b is None or n is None or b <= 0 or n <= 0:
        return Finding("inconclusive", "no timing to compare")
    ratio = n / b
    tolerance = max(options.tolerance, spread)
    widened = f" (tolerance ±{tolerance:.0%} from the baseline's run-to-run spread)" if spread > options.tolerance else ""
    factor = 1 + tolerance
    # Compare both directions with the same expression, so A-vs-B and B-vs-A always mirror each other.
    if n > b * factor:
        direction, moved = "greater", "slower"
    elif b > n * factor:
        direction, moved = "less", "faster"
    else:
        direction, moved = ("greater" if n >= b else "less"), None
    p = _p_value(base.samples, new.samples, direction)
    change = f"{(ratio - 1) * 100:+.1f}%"
    if moved is None:
        return Finding("same", f"{change} within ±{tolerance:.0%}{widened}", ratio, p)
    if p is None:
        return Finding("inconclusive", f"{change} but fewer than {MIN_SAMPLES} samples on a side{widened}", ratio, p)
    if p < options.alpha:
        return Finding(moved, f"{change} (p={p:.2g}){widened}", ratio, p)
    return Finding("inconclusive", f"{change} not significant (p={p:.2g} >= {options.alpha:g}){widened}", ratio, p)


def history_speed(history: list[float], new_median_s: float, options: GateOptions, tests: int) -> Finding:
    """The speed label of a CPU run from the medians of the baseline's saved runs, each saved run one unit.

    Two runs of one setting on a shared CPU differ by more than either run's samples say (another process, a
    different core, a process's own memory placement), so the samples of one run cannot judge the next. The saved
    medians can: on log scale, a new run's median is predicted by their mean with a t interval of n - 1 degrees of
    freedom (prediction, so sqrt(1 + 1/n) times their spread). `slower`/`faster` need the new median beyond that
    bound, at alpha split over the settings and both directions (Bonferroni), AND beyond the tolerance."""
    logs = np.log(np.asarray(history, dtype=float))
    n = len(logs)
    delta = math.log(new_median_s) - float(logs.mean())
    ratio = math.exp(delta)
    scale = float(logs.std(ddof=1)) * math.sqrt(1 + 1 / n)
    level = options.alpha / (2 * max(tests, 1))
    if scale > 0:
        bound = float(stats.t.ppf(1 - level, n - 1)) * scale
        p = float(stats.t.sf(abs(delta) / scale, n - 1))
    else:
        bound, p = 0.0, (0.0 if delta else 1.0)
    margin = max(math.log1p(options.tolerance), bound)
    change = f"{(ratio - 1) * 100:+.1f}% against the mean of {n} saved runs"
    allowed = f"allowed ±{math.expm1(margin):.0%} (their spread {math.expm1(scale):.1%}, t with {n - 1} df)"
    if abs(delta) <= margin:
        return Finding("same", f"{change}, {allowed}", ratio, p)
    return Finding("slower" if delta > 0 else "faster", f"{change} beyond {allowed}", ratio, p)


class OneRun:
    """Samples against samples (mann_whitney), each setting's tolerance widened to its recorded spread."""

    primary = SPEED

    def __init__(self, spreads: dict[str, float] | None = None) -> None:
        self.spreads = spreads or {}

    def findings(self, pairs: Sequence[Pair], options: GateOptions) -> dict[int, SpeedFinding]:
        return {i: SpeedFinding(mann_whitney(b, n, options, self.spreads.get(b.id, 0.0))) for i, b, n in pairs}


def far_beyond(saved: list[float], new_median_s: float, options: GateOptions) -> Finding | None:
    """`slower`/`faster` when the new median is further than FAR (or the tolerance, if larger) from the geometric
    mean of the saved runs' medians (None otherwise): a change no run-to-run drift of a quiet machine explains,
    decided without statistics, where the saved runs are too few or too spread for a bound to see it. On log scale,
    so that A against B mirrors B against A exactly."""
    delta = math.log(new_median_s) - float(np.mean(np.log(saved)))
    factor = max(FAR, 1 + options.tolerance)
    if abs(delta) <= math.log(factor):
        return None
    runs = f"{len(saved)} saved run{'s' if len(saved) != 1 else ''}"
    return Finding("slower" if delta > 0 else "faster",
                   f"{math.expm1(delta) * 100:+.1f}% against the mean of {runs}: beyond {factor:g}x, more than any "
                   f"run-to-run drift this project's machines have shown", math.exp(delta))


class Interleaved:
    """An A/B's blocks (paired.py): processes as the unit, Benjamini-Hochberg across the settings, alpha spent over
    `looks`; a `same` must resolve `detect`; in machine time where the blocks allow it and `by_machine`. A setting
    without blocks falls back to its samples (OneRun)."""

    primary = SPEED

    def __init__(self, blocks: Sequence[list[paired.Block]], looks: int = 1, detect: float = 0.05,
                 by_machine: bool = True) -> None:
        self.blocks, self.looks, self.detect = blocks, looks, detect  # blocks[i]: the i-th pair's
        self.by_machine = by_machine

    def findings(self, pairs: Sequence[Pair], options: GateOptions) -> dict[int, SpeedFinding]:
        found = OneRun().findings([(i, b, n) for i, b, n in pairs if not self.blocks[i]], options)
        timed = [i for i, _, _ in pairs if self.blocks[i]]
        estimates = [paired.estimate(self.blocks[i], self.looks, options.alpha, options.tolerance, self.by_machine)
                     for i in timed]
        for i, d in zip(timed, paired.decide(estimates, options.alpha, options.tolerance, self.detect)):
            e = d.estimate
            detail = (f"{(e.ratio - 1) * 100:+.1f}% [{(e.ci_low - 1) * 100:+.1f}%, {(e.ci_high - 1) * 100:+.1f}%]"
                      f" from {e.blocks} blocks of {e.processes} processes per side")
            if e.machine_slope is not None:
                detail += f", in machine time (speed probe slope {e.machine_slope:.2f})"
            if d.label == "inconclusive" and e.detectable > self.detect:
                detail += f"; could only have seen a slowdown of {percent(e.detectable)} (needs {self.detect:.0%})"
            elif d.label == "inconclusive":
                detail += (f"; beyond {options.tolerance:.0%} in this setting alone, not after the correction across "
                           f"{len(timed)} settings")
            found[i] = SpeedFinding(Finding(d.label, detail, e.ratio, d.p_adjusted), e.ci_low, e.ci_high,
                                    e.detectable, e.processes)
        return found


class Counted:
    """No timing: the first label is the instruction count's (`instructions-up`/`-down`, else `same`; `missing`
    when a side was not counted)."""

    primary = INSTRUCTIONS

    def findings(self, pairs: Sequence[Pair], options: GateOptions) -> dict[int, SpeedFinding]:
        found = {}
        for i, base, new in pairs:
            counted = instructions.finding(base, new, options.instructions_tolerance)
            if counted.ratio is None:
                counted = Finding("missing", "not counted on both sides")
            found[i] = SpeedFinding(counted._replace(label=counted.label or "same"))
        return found
