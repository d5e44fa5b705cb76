"""The instruction-count rule (vitcnn/gate/instructions.py) and where it enters the gate (rules.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import make_run, result, setting, stored
from vitcnn.gate import instructions, rules
from vitcnn.runfile import Result

S = setting()


def counted(count: float | None, status: str = "ok") -> Result:
    return Result(S, status, None if status == "ok" else "boom", info={} if count is None else
                  {"instructions_per_call": count})


@pytest.mark.parametrize(("base", "new", "label"), [
    (100e6, 101.5e6, "instructions-up"), (100e6, 98e6, "instructions-down"), (100e6, 100.9e6, None),
    (100e6, 99.2e6, None)])
def test_finding_labels_beyond_the_tolerance_only(base, new, label):
    found = instructions.finding(counted(base), counted(new), tolerance=0.01)
    assert found.label == label
    assert found.ratio == pytest.approx(new / base)
    assert f"{new / base - 1:+.2%}" in found.detail


def test_a_side_without_a_count_decides_nothing():
    assert instructions.finding(counted(None), counted(1e6)) == (None, "", None, None)
    assert instructions.finding(counted(1e6), counted(None)).label is None
    assert instructions.finding(counted(1e6), counted(2e6, status="error")).label is None


@given(base=st.floats(1e3, 1e12), change=st.floats(-0.5, 0.5), tolerance=st.floats(0, 0.2))
def test_label_iff_the_change_is_beyond_the_tolerance(base, change, tolerance):
    found = instructions.finding(counted(base), counted(base * (1 + change)), tolerance)
    ratio = (base * (1 + change)) / base
    expected = "instructions-up" if ratio - 1 > tolerance else "instructions-down" if 1 - ratio > tolerance else None
    assert found.label == expected


def test_the_stored_baseline_gate_flags_instructions_up_as_a_regression_beside_the_speed_verdict():
    samples = [0.01 + 1e-5 * i for i in range(20)]
    base = stored(make_run(result(S, samples, instructions_per_call=200e6)))
    new = make_run(result(S, samples, instructions_per_call=210e6))
    verdict = rules.compare(base, new).verdicts[0]
    assert verdict.labels == ("same", "instructions-up") and verdict.regression
    assert (verdict.base_instructions, verdict.new_instructions) == (200e6, 210e6)
    assert "instructions +5.00%" in verdict.detail
    looser = rules.compare(base, new, rules.GateOptions(instructions_tolerance=0.06)).verdicts[0]
    assert looser.labels == ("same",) and not looser.regression


def test_compare_counted_decides_by_counts_alone_and_keeps_status_labels():
    other = setting(resolution=128)
    pairs = [(counted(100e6), counted(100.2e6)), (counted(100e6), counted(112e6)),
             (Result(other, "ok", info={"instructions_per_call": 5e6}), Result(other, "error", "boom"))]
    comparison = rules.compare_counted(pairs, rules.GateOptions(instructions_tolerance=0.01))
    labels = [v.labels for v in comparison.verdicts]
    assert labels == [("same",), ("instructions-up",), ("now-error",)]
    assert [v.regression for v in comparison.verdicts] == [False, True, True]
    assert comparison.verdicts[0].ratio == pytest.approx(1.002) and comparison.verdicts[0].new_median_s is None
    assert "2 regressions (1 instructions-up, 1 now-error)" in comparison.summary()


def test_compare_counted_calls_a_setting_counted_on_one_side_only_missing():
    comparison = rules.compare_counted([(counted(100e6), counted(None))])
    assert comparison.verdicts[0].labels == ("missing",) and comparison.verdicts[0].regression


def test_compare_counted_shares_the_compare_core_deterministic_findings():
    """The same core as the stored gate and the timed A/B: a graph break that appears with the same count is
    flagged too (compare_counted once dropped everything but the count)."""
    base = Result(S, "ok", info={"instructions_per_call": 100e6, "graph_breaks": 0})
    new = Result(S, "ok", info={"instructions_per_call": 100.1e6, "graph_breaks": 2, "graph_break_reasons": ["x"]})
    [verdict] = rules.compare_counted([(base, new)]).verdicts
    assert verdict.labels == ("same", "graph-breaks-up") and verdict.regression
    assert "graph breaks 0 -> 2 (first: x)" in verdict.detail


def test_gate_options_refuse_a_negative_instructions_tolerance():
    with pytest.raises(ValueError, match="instructions"):
        rules.GateOptions(instructions_tolerance=-0.1)
