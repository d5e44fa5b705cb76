"""vitcnn/gate/flops.py: the FLOP count's rule, alone and inside a comparison (an A/B and a stored baseline)."""

from __future__ import annotations

import pytest

from tests.factories import setting
from vitcnn.gate import flops, rules
from vitcnn.gate.metrics import FLOPS, GateOptions
from vitcnn.result import Result


def counted(value: float | None, error: str | None = None, median_s: float = 0.01) -> Result:
    info = {"flops": value, **({"flops_error": error} if error else {})}
    return Result(setting(), "ok", samples=[median_s] * 20, info=info)


@pytest.mark.parametrize("base, new, label", [
    (1.0e9, 1.1e9, "flops-up"), (1.0e9, 1.0005e9, None), (1.0e9, 0.9e9, "flops-down"), (1.0e9, 1.0e9, None)])
def test_a_count_beyond_the_tolerance_is_labelled_and_within_it_is_not(base, new, label):
    found = flops.rule(FLOPS, counted(base), counted(new), GateOptions())
    assert found.label == label
    assert ("+10.00% (1.000 -> 1.100 GFLOP per call)" in found.detail) == (label == "flops-up")


def test_no_count_or_counts_of_different_completeness_decide_nothing():
    assert flops.rule(FLOPS, counted(None), counted(2e9), GateOptions()).label is None
    found = flops.rule(FLOPS, counted(1e9, error="no formula for aten::foo"), counted(2e9), GateOptions())
    assert found.label is None and "incomplete" in found.detail


def test_the_tolerance_is_an_option():
    assert flops.rule(FLOPS, counted(1e9), counted(1.05e9), GateOptions(flops_tolerance=0.1)).label is None
    assert GateOptions().flops_tolerance == 0.001


def test_a_flop_increase_fails_a_comparison_whatever_the_speed_says():
    """The speed rule reads a 5% slowdown from one run as nothing; the count still fails the setting."""
    base, new = counted(1.0e9, median_s=0.0100), counted(1.1e9, median_s=0.0105)
    verdict = rules.compare_result(base, new)
    assert "flops-up" in verdict.labels and verdict.regression
    assert "FLOPs +10.00%" in verdict.detail
