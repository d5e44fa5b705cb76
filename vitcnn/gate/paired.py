"""Statistics of an interleaved A/B session: is B slower than A, by how much, how sure, and what could it have seen?

The unit is a worker process's instance of a setting, not a block. Two identical processes can run one setting at
lastingly different speeds: on the 2-core VM an eager NF-Net ran 16% and 25% faster in one fresh process than in its
twin for all of their blocks, and in a smoke A/A one process of six ran two NF-Net settings 30% and 38% slower than
the others (docs/results.md). Interleaving cancels drift over time, never such a difference, so blocks of one
process are not independent draws; processes are. `vitcnn ab` therefore runs several processes per side and
analyses them as the unit:

- every block gives y = log(its median call time); blocks run in rounds (each process one block per round, sides
  interleaved), and a least-squares fit y = round + process removes the machine's drift shared by a round and leaves
  one effect per process;
- machine time: every block also records the speed probe around it (vitcnn/measure/host.py: a fixed pure-Python
  loop). On the 2-core VM a block's residual followed its probe (r = 0.75-0.95 in 5 of 6 settings of one A/A
  session, 0.26-0.92 in two more) and so did most process effects: the slow blocks and the slow processes are
  mostly a slow core, outside the guest (docs/results.md, "The machine speed probe"). So the fit gains the probe
  as a covariate, y = round + process + slope * log(probe), the
  slope estimated from the blocks' variation inside their processes (pooled ANCOVA), and each process effect is
  taken in machine time: its effect minus slope times its probe's effect. Not where a block lacks a probe (a
  worker from before it), and not where the sides' probes differ (p < MACHINE_BALANCE_ALPHA): a change that slows
  the core itself must stay visible;
- estimate of log(B/A): mean of B's process effects minus mean of A's;
- p: one-sided two-sample t-test of B's process effects against A's (scipy.stats.ttest_ind, pooled variance,
  2P - 2 degrees of freedom for P processes per side): a difference that lives in one process inflates the spread
  between a side's processes and so widens the interval; it cannot make a verdict on its own;
- sequential: a session looks at a setting after each stage (stage 1: `first` processes per side; every later stage
  adds one fresh process per side and more rounds) and stops as soon as the setting is settled. Every look spends
  alpha / looks (Bonferroni), so the p-values, already multiplied by the number of looks, stay valid however early
  a setting stops;
- across settings: Benjamini-Hochberg adjusted p-values (scipy.stats.false_discovery_control), per direction.

Verdict: `slower` needs adjusted p < alpha AND an estimated slowdown beyond the threshold; `faster` mirrors it;
otherwise `same` when the setting's detectable slowdown (the smallest one it would have flagged with 80% power) is
within `detect` and its interval is not wholly beyond the threshold, else `inconclusive`. Designed false-alarm rate:
in an A/A session, the chance that any setting is flagged `slower` is at most alpha (vitcnn ab's default 2.5%; as
much again for `faster`), before the threshold makes it rarer still; tests/gate/test_paired.py checks it on synthetic
sessions with per-process offsets and drift that differs between the sides.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import optimize, stats

from vitcnn.gate.metrics import SPEED_LABELS

POWER = 0.8  # the detectable effect is the slowdown flagged with this probability
MACHINE_BALANCE_ALPHA = 0.01  # sides whose probes differ this surely are judged by the clock
MACHINE_SLOPE_MAX = 1.5  # a slope beyond this is noise: a call cannot slow more than the core it runs on (1.0)
EFFECT_DIGITS = 12  # process effects are rounded to this many decimals of log time (see process_effects)


class Block(NamedTuple):
    """One timed block: which side and process ran it, in which round, and its median call time in seconds."""

    side: str  # "A" or "B"
    process: int  # index of the side's worker process
    round: int
    median: float
    probe: float | None = None  # the machine's speed probe around the block (ns); None where not recorded


@dataclass(frozen=True)
class PairedEstimate:
    """One setting's comparison: B/A ratio, its confidence interval, one-sided p-values (already multiplied by the
    number of looks the design allows) and the smallest slowdown the measurement would have caught."""

    processes: int  # per side
    blocks: int  # per side
    log_ratio: float  # log(B/A)
    log_ci_low: float  # 1 - 2 alpha/looks interval of log(B/A), so that an end passes 0 exactly where the one-sided
    # test at alpha/looks is significant; -inf/inf when it cannot be bounded
    log_ci_high: float
    p_slower: float
    p_faster: float
    log_detectable: float  # log(1 + detectable slowdown); inf when the spread cannot be estimated
    looks: int = 1
    machine_slope: float | None = None  # the probe's slope where the effects were taken in machine time

    ratio = property(lambda self: math.exp(self.log_ratio), doc="Estimated B/A time ratio (> 1: B slower).")
    ci_low = property(lambda self: math.exp(self.log_ci_low), doc="Lower end of the ratio's confidence interval.")
    ci_high = property(lambda self: math.exp(self.log_ci_high), doc="Upper end of the ratio's confidence interval.")
    detectable = property(lambda self: math.expm1(self.log_detectable),
                          doc="Smallest relative slowdown flagged with 80% power (0.05: 5%; inf: unknown).")


@dataclass(frozen=True)
class PairedVerdict:
    """The decision for one setting, after the correction across settings."""

    label: str
    estimate: PairedEstimate
    p_adjusted: float  # Benjamini-Hochberg adjusted p in the direction the estimate moved

    def __post_init__(self) -> None:
        assert self.label in SPEED_LABELS


def block_median(samples: Sequence[float]) -> float:
    """The number one block contributes: its median call time (robust to one preempted call)."""
    return statistics.median(samples)


def _fit(blocks: Sequence[Block]) -> tuple[list[tuple[str, int]], np.ndarray, np.ndarray, int]:
    """Least squares y = round + process on log block medians: the units, their coefficients, the residuals and the
    residual degrees of freedom."""
    medians = np.array([b.median for b in blocks], dtype=float)
    if not (np.isfinite(medians).all() and (medians > 0).all()):
        raise ValueError("block medians must be finite and positive")
    units = sorted({(b.side, b.process) for b in blocks})
    rounds = sorted({b.round for b in blocks})
    unit_index = {u: i for i, u in enumerate(units)}
    round_index = {r: len(units) + i for i, r in enumerate(rounds)}
    design = np.zeros((len(blocks), len(units) + len(rounds)))
    for row, b in enumerate(blocks):
        design[row, unit_index[(b.side, b.process)]] = 1.0
        design[row, round_index[b.round]] = 1.0
    y = np.log(medians)
    coefficients, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    return units, coefficients[:len(units)], y - design @ coefficients, len(blocks) - int(rank)


def process_effects(blocks: Sequence[Block]) -> dict[tuple[str, int], float]:
    """Each (side, process)'s effect on log time, the rounds' shared drift removed (least squares, y = round +
    process). Effects are defined up to one common constant: only their differences mean anything."""
    if not blocks:
        return {}
    units, effects, _, _ = _fit(blocks)
    # Rounded to 1e-12 in log time (a relative 1e-12, far below a clock's resolution): the fit's floating-point
    # residue (~1e-16) must not read as a difference, or identical sides would test as exactly different.
    return {u: round(float(e), EFFECT_DIGITS) for u, e in zip(units, effects)}


def machine_time(blocks: Sequence[Block]) -> tuple[dict[tuple[str, int], float], float] | None:
    """The process effects in machine time and the probe's slope (see the module docstring); None where a block has
    no probe, the probe explains nothing, or the sides' probes differ (judge by the clock: process_effects)."""
    if not blocks or not all(b.probe and b.probe > 0 for b in blocks):
        return None
    units, time_effects, time_residuals, df = _fit(blocks)
    _, probe_effects, probe_residuals, _ = _fit([b._replace(median=b.probe) for b in blocks])
    explained = float(probe_residuals @ probe_residuals)
    if df < 2 or explained <= 0:
        return None
    a = [e for u, e in zip(units, probe_effects) if u[0] == "A"]
    b = [e for u, e in zip(units, probe_effects) if u[0] == "B"]
    if len(a) >= 2 and len(b) >= 2 and np.ptp(a + b) > 0 and \
            stats.ttest_ind(a, b).pvalue < MACHINE_BALANCE_ALPHA:
        return None
    slope = min(float(time_residuals @ probe_residuals) / explained, MACHINE_SLOPE_MAX)
    if slope <= 0:  # the probe explains nothing of this setting's blocks
        return None
    return {u: round(float(t - slope * p), EFFECT_DIGITS) for u, t, p in zip(units, time_effects, probe_effects)}, slope


class VarianceShares(NamedTuple):
    """How a setting's block-to-block variance of log time splits between processes and within them."""

    between: float  # variance of the process effects beyond what their own blocks' noise explains
    within: float  # residual variance of one block, the rounds' drift removed
    processes: int  # per side (the smaller side)

    @property
    def share_between(self) -> float:
        total = self.between + self.within
        return self.between / total if total > 0 else 0.0


def variance_components(blocks: Sequence[Block]) -> VarianceShares:
    """Between- and within-process variance of log block time (random-effects ANOVA on the y = round + process
    fit): the process effects' spread around their side's mean, less the part the blocks' own noise gives an effect
    estimated from B blocks (within / B). A share near 1 says the processes, not the blocks, carry the noise."""
    units, effects, residuals, df = _fit(blocks)
    within = float(residuals @ residuals / df) if df > 0 else 0.0
    deviations, per_side = [], {}
    for side in sorted({u[0] for u in units}):
        mine = np.array([e for u, e in zip(units, effects) if u[0] == side])
        per_side[side] = len(mine)
        deviations += list(mine - mine.mean())
    spread_df = sum(n - 1 for n in per_side.values())
    blocks_per_process = len(blocks) / max(len(units), 1)
    spread = float(np.dot(deviations, deviations) / spread_df) if spread_df > 0 else 0.0
    return VarianceShares(max(spread - within / blocks_per_process, 0.0), within, min(per_side.values()))


def _detectable(se: float, df: int, alpha: float, threshold: float) -> float:
    """log(1 + the slowdown) that `decide` flags with probability POWER: its one-sided t-test (df, alpha) must be
    significant (noncentral t) and its estimate beyond the threshold (t quantile); the larger of the two."""
    if not (se > 0 and math.isfinite(se) and df >= 1):
        return 0.0 if se == 0 else math.inf
    critical = stats.t.ppf(1 - alpha, df)

    def shortfall(delta: float) -> float:
        return stats.nct.sf(critical, df, delta / se) - POWER

    significant = optimize.brentq(shortfall, 0.0, se * (critical + 50))
    beyond_threshold = math.log1p(threshold) + stats.t.ppf(POWER, df) * se
    return float(max(significant, beyond_threshold))


def estimate(blocks: Sequence[Block], looks: int = 1, alpha: float = 0.05, threshold: float = 0.03,
             by_machine: bool = True) -> PairedEstimate:
    """Ratio, interval, p-values and detectable slowdown of B against A from the blocks of one setting.

    `looks`: how many looks the sequential design allows; every look spends alpha / looks, so the p-values are
    multiplied by it and each end of the interval is the one-sided bound at alpha / looks (a 1 - 2 alpha / looks
    interval: a verdict never comes with an interval that holds 1). `by_machine`: in machine time where the blocks
    allow it (machine_time)."""
    if looks < 1:
        raise ValueError(f"looks must be >= 1, got {looks}")
    found = machine_time(blocks) if by_machine else None
    effects, slope = found if found is not None else (process_effects(blocks), None)
    a = np.array([v for (side, _), v in effects.items() if side == "A"])
    b = np.array([v for (side, _), v in effects.items() if side == "B"])
    per_side = {side: sum(1 for blk in blocks if blk.side == side) for side in "AB"}
    processes = min(len(a), len(b))
    if processes == 0:
        return PairedEstimate(0, 0, math.nan, -math.inf, math.inf, 1.0, 1.0, math.inf, looks)
    centre = float(b.mean() - a.mean())
    df = len(a) + len(b) - 2
    if df < 1:
        return PairedEstimate(processes, min(per_side.values()), centre, -math.inf, math.inf, 1.0, 1.0, math.inf,
                              looks, slope)
    pooled = (((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum()) / df
    se = math.sqrt(pooled * (1 / len(a) + 1 / len(b)))
    spent = alpha / looks
    if se > 0:
        p_slower = float(stats.ttest_ind(b, a, alternative="greater").pvalue)
        p_faster = float(stats.ttest_ind(b, a, alternative="less").pvalue)
        half = float(stats.t.ppf(1 - spent, df)) * se  # each end is the one-sided test `decide` makes
    else:  # identical process effects on each side: the difference is exact
        p_slower, p_faster = (0.0 if centre > 0 else 1.0), (0.0 if centre < 0 else 1.0)
        half = 0.0
    return PairedEstimate(processes, min(per_side.values()), centre, centre - half, centre + half,
                          min(1.0, p_slower * looks), min(1.0, p_faster * looks),
                          _detectable(se, df, spent, threshold), looks, slope)


def settled(e: PairedEstimate, alpha: float = 0.05, threshold: float = 0.03, detect: float = 0.05) -> bool:
    """Whether a look can stop measuring this setting: it is significantly beyond the threshold in one direction,
    or it already resolves `detect` (a `same` it would keep). Checked per setting, before the correction across
    settings, which only ever turns a verdict into `same`."""
    bound = math.log1p(threshold)
    return ((e.p_slower < alpha and e.log_ratio > bound) or (e.p_faster < alpha and e.log_ratio < -bound)
            or e.log_detectable <= math.log1p(detect))


def beyond_threshold(e: PairedEstimate, threshold: float) -> bool:
    """Whether the setting's whole interval lies beyond +-threshold: significant alone, whatever the correction
    across the session's settings says (such a row is never `same`)."""
    bound = math.log1p(threshold)
    return e.log_ci_low > bound or e.log_ci_high < -bound


def adjust(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (scipy), in the input order."""
    if not len(p_values):
        return []
    return [float(p) for p in stats.false_discovery_control(np.asarray(p_values, dtype=float), method="bh")]


def decide(estimates: Sequence[PairedEstimate], alpha: float = 0.05, threshold: float = 0.03,
           detect: float = 0.05) -> list[PairedVerdict]:
    """Verdicts for every setting of one session (the correction runs over all of them, per direction)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not (threshold >= 0 and math.isfinite(threshold)):
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold}")
    if not detect > 0:
        raise ValueError(f"detect must be > 0, got {detect}")
    slower_p = adjust([e.p_slower for e in estimates])
    faster_p = adjust([e.p_faster for e in estimates])
    bound = math.log1p(threshold)  # in log space, so swapping A and B mirrors every decision exactly
    verdicts = []
    for e, ps, pf in zip(estimates, slower_p, faster_p):
        if ps < alpha and e.log_ratio > bound:
            verdicts.append(PairedVerdict("slower", e, ps))
        elif pf < alpha and e.log_ratio < -bound:
            verdicts.append(PairedVerdict("faster", e, pf))
        else:  # a `same` resolves `detect` and its interval reaches within the threshold (not beyond it alone)
            same = e.log_detectable <= math.log1p(detect) and not beyond_threshold(e, threshold)
            p = ps if e.p_slower <= e.p_faster else pf
            verdicts.append(PairedVerdict("same" if same else "inconclusive", e, p))
    return verdicts
