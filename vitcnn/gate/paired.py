"""Paired statistics for interleaved A/B timing: is B slower than A, by how much, and how sure are we?

Why paired: on a shared machine the speed of the whole box drifts (other jobs, clocks, caches) for seconds at a
time, so samples of one run are correlated and two separate runs differ by far more than their own spread says.
`vitcnn ab` times short blocks of A and B back to back; adjacent blocks share the machine's state, so the
log-ratio of their medians cancels the drift. Per setting:

- one number per block: the median call time of the block (robust to a single preempted call);
- one number per pair of adjacent blocks: d = log(B / A);
- p: a one-sided Wilcoxon signed-rank test on the d's (scipy), each direction;
- the ratio: the Hodges–Lehmann estimate exp(median of the Walsh averages (d_i + d_j) / 2) and its distribution-free
  confidence interval from the exact signed-rank null distribution (the test inverted, so p and CI agree);
- across settings: Benjamini–Hochberg adjusted p-values (scipy.stats.false_discovery_control), per direction.

Decision: `slower` needs adjusted p < alpha AND the CI's lower end above 1 + threshold; `faster` mirrors it (upper
end below 1 / (1 + threshold)); `same` otherwise. Designed false-alarm rate: when nothing changed (every setting
A/A), Benjamini–Hochberg controls the chance that ANY setting is flagged `slower` at alpha (default 5% per
session), before the threshold makes it rarer still; tests/gate/test_paired.py checks this on synthetic A/A data.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LABELS = ("slower", "faster", "same")


@dataclass(frozen=True)
class PairedEstimate:
    """One setting's paired comparison: B/A ratio, its confidence interval, and raw one-sided p-values."""

    pairs: int
    log_ratio: float  # Hodges-Lehmann estimate of log(B/A)
    log_ci_low: float  # confidence interval of log(B/A) (-inf / inf when too few pairs to bound it)
    log_ci_high: float
    p_slower: float  # one-sided Wilcoxon signed-rank p that B is slower (unadjusted)
    p_faster: float

    ratio = property(lambda self: math.exp(self.log_ratio), doc="Estimated B/A time ratio (> 1: B slower).")
    ci_low = property(lambda self: math.exp(self.log_ci_low), doc="Lower end of the ratio's confidence interval.")
    ci_high = property(lambda self: math.exp(self.log_ci_high), doc="Upper end of the ratio's confidence interval.")


@dataclass(frozen=True)
class PairedVerdict:
    """The decision for one setting, after the correction across settings."""

    label: str
    estimate: PairedEstimate
    p_adjusted: float  # Benjamini-Hochberg adjusted p in the direction the estimate moved

    def __post_init__(self) -> None:
        assert self.label in LABELS


def block_median(samples: Sequence[float]) -> float:
    """The number one block contributes: its median call time."""
    return statistics.median(samples)


def log_ratios(a_medians: Sequence[float], b_medians: Sequence[float]) -> np.ndarray:
    """log(B / A) of each pair of adjacent blocks; both sequences in pair order, equally long, positive."""
    a, b = np.asarray(a_medians, dtype=float), np.asarray(b_medians, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need as many A blocks as B blocks, got {a.shape} and {b.shape}")
    if (a <= 0).any() or (b <= 0).any() or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("block medians must be finite and positive")
    return np.log(b) - np.log(a)


def walsh_averages(d: np.ndarray) -> np.ndarray:
    """(d_i + d_j) / 2 for all i <= j, sorted: the Hodges-Lehmann estimator is their median."""
    i, j = np.triu_indices(len(d))
    return np.sort((d[i] + d[j]) / 2)


def signed_rank_cdf(n: int) -> np.ndarray:
    """P(T+ <= t) for t = 0 .. n(n+1)/2 under the null, exactly: T+ is a sum of a random subset of ranks 1..n."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    return np.cumsum(counts) / 2.0**n


def hodges_lehmann(d: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """Estimate and two-sided `confidence` interval of the centre of the d's (the signed-rank test inverted).

    The bounds are the k-th smallest and k-th largest Walsh averages, with k the largest count such that
    P(T+ <= k - 1) <= (1 - confidence) / 2; with too few pairs for any such k the interval is unbounded.
    """
    walsh = walsh_averages(d)
    estimate = float(np.median(walsh))
    cdf = signed_rank_cdf(len(d))
    tail = (1 - confidence) / 2
    k = int(np.searchsorted(cdf, tail, side="right"))  # number of t with P(T+ <= t) <= tail
    if k < 1:
        return estimate, -math.inf, math.inf
    return estimate, float(walsh[k - 1]), float(walsh[len(walsh) - k])


def _wilcoxon_p(d: np.ndarray, alternative: str) -> float:
    if len(d) == 0 or not np.any(d):
        return 1.0
    return float(stats.wilcoxon(d, alternative=alternative).pvalue)


def estimate(a_medians: Sequence[float], b_medians: Sequence[float], confidence: float = 0.95) -> PairedEstimate:
    """Ratio, CI and one-sided p-values of B against A from the paired block medians."""
    d = log_ratios(a_medians, b_medians)
    if len(d) == 0:
        return PairedEstimate(0, math.nan, -math.inf, math.inf, 1.0, 1.0)
    centre, low, high = hodges_lehmann(d, confidence)
    return PairedEstimate(len(d), centre, low, high, _wilcoxon_p(d, "greater"), _wilcoxon_p(d, "less"))


def adjust(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (scipy), in the input order."""
    if not len(p_values):
        return []
    return [float(p) for p in stats.false_discovery_control(np.asarray(p_values, dtype=float), method="bh")]


def decide(estimates: Sequence[PairedEstimate], alpha: float = 0.05, threshold: float = 0.03) -> list[PairedVerdict]:
    """Verdicts for every setting of one session (the correction runs over all of them, per direction)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not (threshold >= 0 and math.isfinite(threshold)):
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold}")
    slower_p = adjust([e.p_slower for e in estimates])
    faster_p = adjust([e.p_faster for e in estimates])
    bound = math.log1p(threshold)  # in log space, so swapping A and B mirrors every decision exactly
    verdicts = []
    for e, ps, pf in zip(estimates, slower_p, faster_p):
        if ps < alpha and e.log_ci_low > bound:
            verdicts.append(PairedVerdict("slower", e, ps))
        elif pf < alpha and e.log_ci_high < -bound:
            verdicts.append(PairedVerdict("faster", e, pf))
        else:
            verdicts.append(PairedVerdict("same", e, ps if e.p_slower <= e.p_faster else pf))
    return verdicts
