"""Paired statistics of interleaved A/B (vitcnn/gate/paired.py), on synthetic block medians with known truth.

The noise model imitates this project's 2-core VM: the whole machine drifts between regimes (a random walk plus
jumps of up to ~40%, shared by adjacent A and B blocks) and every block adds its own noise.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from vitcnn.gate import paired

SETTINGS = 32  # the smoke profile
PAIRS = 20  # blocks per side by default (vitcnn ab --blocks)
MIRROR = {"slower": "faster", "faster": "slower", "same": "same"}


def session(rng: np.random.Generator, ratio: float = 1.0, settings_count: int = SETTINGS, pairs: int = PAIRS,
            block_noise: float = 0.03) -> list[paired.PairedEstimate]:
    """One synthetic A/B session: every setting's B is `ratio` times A, under a drifting machine."""
    estimates = []
    for _ in range(settings_count):
        base = rng.uniform(0.002, 0.2)
        drift = np.cumsum(rng.normal(0, 0.05, pairs)) + rng.choice([0.0, 0.4], pairs, p=[0.8, 0.2])
        a = base * np.exp(drift + rng.normal(0, block_noise, pairs))
        b = base * ratio * np.exp(drift + rng.normal(0, block_noise, pairs))
        estimates.append(paired.estimate(a, b))
    return estimates


def false_alarm_bound(alarms: int, trials: int, rate: float) -> bool:
    """True unless the observed alarm count is implausibly high for the design rate (binomial, p < 0.001)."""
    return stats.binomtest(alarms, trials, rate, alternative="greater").pvalue > 0.001


# --------------------------------------------------------------------------------------- the exact null and the CI


@pytest.mark.parametrize("n", [1, 5, 10, 20])
def test_signed_rank_null_matches_scipy_exact_p_values(n):
    cdf = paired.signed_rank_cdf(n)
    assert cdf[-1] == pytest.approx(1.0) and np.all(np.diff(cdf) >= 0)
    d = np.arange(1, n + 1, dtype=float) * np.where(np.arange(n) % 3 == 0, -1, 1)  # T+ is known: sum of + ranks
    t_plus = int(np.sum(np.arange(1, n + 1)[d > 0]))
    expected = stats.wilcoxon(d, alternative="less", method="exact").pvalue  # P(T+ <= t_plus)
    assert cdf[t_plus] == pytest.approx(expected)


def test_hodges_lehmann_is_the_median_of_walsh_averages_and_the_ci_brackets_it():
    d = np.array([0.05, -0.01, 0.03, 0.02, 0.08, 0.00, 0.04, 0.06, 0.01, 0.03])
    walsh = [(x + y) / 2 for i, x in enumerate(d) for y in d[i:]]
    centre, low, high = paired.hodges_lehmann(d, 0.95)
    assert centre == pytest.approx(np.median(walsh))
    assert low < centre < high
    # n = 10: P(T+ <= 8) = 0.0244 <= 0.025 < P(T+ <= 9), so the bounds are the 9th smallest and largest of 55
    assert low == pytest.approx(sorted(walsh)[8]) and high == pytest.approx(sorted(walsh)[-9])


def test_too_few_pairs_give_an_unbounded_interval_and_never_a_verdict():
    est = paired.estimate([1.0] * 5, [2.0] * 5)  # 5 pairs: P(T+ = 0) = 1/32 > 2.5%
    assert est.ci_low == 0 and est.ci_high == math.inf
    assert paired.decide([est])[0].label == "same"


def test_ci_covers_the_true_ratio_at_about_the_stated_confidence():
    rng = np.random.default_rng(7)
    truth = math.log(1.07)
    covered = 0
    trials = 400
    for _ in range(trials):
        d = truth + rng.laplace(0, 0.03, PAIRS)  # symmetric noise, as the signed-rank interval assumes
        _, low, high = paired.hodges_lehmann(d, 0.95)
        covered += low <= truth <= high
    assert covered / trials >= 0.93  # exact coverage 1 - 2 * 0.0244 = 95.1%


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="as many"):
        paired.log_ratios([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        paired.log_ratios([1.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="alpha"):
        paired.decide([], alpha=1.5)
    with pytest.raises(ValueError, match="threshold"):
        paired.decide([], threshold=-0.1)


def test_benjamini_hochberg_is_scipys():
    p = [0.001, 0.02, 0.03, 0.5]
    assert paired.adjust(p) == pytest.approx([0.004, 0.04, 0.04, 0.5])
    assert paired.adjust([]) == []


# ---------------------------------------------------------------------------- false alarms and power, by design


def test_a_a_sessions_flag_nothing_beyond_the_designed_false_alarm_rate():
    """Design: in an A/A session, P(any of the 32 settings flagged slower) <= alpha = 5%. Checked both with the
    default 3% threshold and with none (the correction alone must hold the rate)."""
    rng = np.random.default_rng(2026)
    trials = 300
    alarms = {0.03: 0, 0.0: 0}
    for _ in range(trials):
        estimates = session(rng)
        for threshold in alarms:
            alarms[threshold] += any(v.label == "slower" for v in paired.decide(estimates, 0.05, threshold))
    assert false_alarm_bound(alarms[0.0], trials, 0.05), alarms
    assert false_alarm_bound(alarms[0.03], trials, 0.05), alarms
    assert alarms[0.03] <= alarms[0.0]


def test_a_planted_ten_percent_slowdown_is_detected_in_nearly_every_setting():
    rng = np.random.default_rng(11)
    flagged = [v.label == "slower" for _ in range(20) for v in paired.decide(session(rng, ratio=1.10))]
    assert sum(flagged) / len(flagged) >= 0.9


def test_a_slowdown_below_the_threshold_is_not_a_regression_however_significant():
    rng = np.random.default_rng(5)
    verdicts = paired.decide(session(rng, ratio=1.01, block_noise=0.002), 0.05, 0.03)
    assert all(v.label != "slower" for v in verdicts)
    assert all(v.p_adjusted < 0.05 for v in verdicts)  # it is real, just smaller than what counts


def test_the_estimated_ratio_tracks_the_planted_one():
    rng = np.random.default_rng(3)
    for ratio in (0.8, 1.0, 1.1, 1.5):
        estimates = session(rng, ratio=ratio, settings_count=8)
        assert np.median([e.ratio for e in estimates]) == pytest.approx(ratio, rel=0.03)


# ------------------------------------------------------------------------------------------------------ properties

medians = st.lists(st.floats(1e-4, 1.0, allow_nan=False), min_size=6, max_size=16)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), count=st.integers(1, 4), threshold=st.sampled_from([0.0, 0.03, 0.1]))
def test_swapping_a_and_b_mirrors_every_verdict(data, count, threshold):
    sides = [data.draw(st.tuples(medians, medians).filter(lambda ab: len(ab[0]) == len(ab[1]))
                       | medians.map(lambda a: (a, [x * 1.2 for x in a]))) for _ in range(count)]
    forward = paired.decide([paired.estimate(a, b) for a, b in sides], 0.05, threshold)
    backward = paired.decide([paired.estimate(b, a) for a, b in sides], 0.05, threshold)
    for f, b in zip(forward, backward):
        assert b.label == MIRROR[f.label]
        assert b.estimate.log_ratio == pytest.approx(-f.estimate.log_ratio, abs=1e-12)
        assert b.estimate.p_slower == pytest.approx(f.estimate.p_faster)


@settings(max_examples=60, deadline=None)
@given(a=medians, scale=st.floats(0.01, 100), factor=st.floats(0.5, 2.0))
def test_verdicts_do_not_depend_on_units_and_the_ratio_lies_in_its_interval(a, scale, factor):
    rng = np.random.default_rng(len(a))
    b = [x * factor * math.exp(rng.normal(0, 0.02)) for x in a]
    one = paired.estimate(a, b)
    other = paired.estimate([x * scale for x in a], [x * scale for x in b])
    assert other.log_ratio == pytest.approx(one.log_ratio, abs=1e-9)
    assert other.p_slower == pytest.approx(one.p_slower)
    assert one.ci_low <= one.ratio <= one.ci_high


def test_identical_sides_are_same_with_p_one():
    est = paired.estimate([0.01] * 10, [0.01] * 10)
    assert (est.ratio, est.p_slower, est.p_faster) == (1.0, 1.0, 1.0)
    assert paired.decide([est])[0].label == "same"


def test_pairs_are_used_in_order():
    a = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    shuffled = list(itertools.chain(a[3:], a[:3]))
    in_order = paired.estimate(a, [x * 1.1 for x in a])
    assert in_order.ratio == pytest.approx(1.1) and in_order.ci_low == pytest.approx(1.1)
    out_of_order = paired.estimate(a, [x * 1.1 for x in shuffled])
    assert out_of_order.ci_low < 0.5 and out_of_order.ci_high > 2  # pairs that are not adjacent blocks: no signal
