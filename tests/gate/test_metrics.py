"""The table of gated metrics (vitcnn/gate/metrics.py) and what is derived from it: labels, GateOptions, the options
of pytest and `vitcnn compare`, rules that resolve, and the history's series."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from vitcnn.gate import metrics
from vitcnn.history import series


def test_labels_and_regressions_come_from_the_entries():
    assert metrics.LABELS[:4] == metrics.SPEED.labels  # the summary line counts labels in this order
    assert len(set(metrics.LABELS)) == len(metrics.LABELS)
    for metric in metrics.GATED.values():
        assert set(metric.regressions) <= set(metric.labels) <= set(metrics.LABELS)
        assert set(metric.regressions) <= metrics.ALWAYS_REGRESSIONS
    assert metrics.REGRESSIONS - metrics.ALWAYS_REGRESSIONS == {"missing"}


def test_every_rule_resolves_and_every_scope_is_known():
    for metric in metrics.GATED.values():
        assert callable(metric.decide()), metric.name
        assert metric.scope in ("speed", "setting", "session")


def test_gate_options_are_the_parameters_and_the_switches():
    fields = {f.name: f.default for f in dataclasses.fields(metrics.GateOptions)}
    assert set(fields) == set(metrics.PARAMETERS) | set(metrics.SWITCHES)
    assert all(fields[name] == p.default for name, p in metrics.PARAMETERS.items())
    for name, parameter in metrics.PARAMETERS.items():
        with pytest.raises(ValueError, match=name):
            metrics.GateOptions(**{name: -1.0 if name != "alpha" else 1.5})


@pytest.mark.parametrize("prefix, pytest_side", [("--vitcnn-", True), ("--", False)])
def test_the_options_of_both_command_lines_round_trip_to_gate_options(prefix, pytest_side):
    parser = argparse.ArgumentParser()
    metrics.add_gate_options(parser.add_argument, prefix, pytest=pytest_side)

    def getoption(namespace):
        return lambda option: getattr(namespace, option.lstrip("-").replace("-", "_"))

    defaults = parser.parse_args([])
    assert metrics.options_from(getoption(defaults), prefix, pytest=pytest_side) == metrics.GateOptions()
    absolute = [] if pytest_side else [f"{prefix}memory-abs-mib", "2"]
    given = parser.parse_args([f"{prefix}tolerance", "0.2", f"{prefix}memory-tolerance", "0.3",
                               f"{prefix}allow-missing", *absolute])
    options = metrics.options_from(getoption(given), prefix, pytest=pytest_side)
    assert (options.tolerance, options.memory_rel_tolerance, options.allow_missing) == (0.2, 0.3, True)
    default_abs = metrics.GateOptions().memory_abs_tolerance
    assert options.memory_abs_tolerance == (2 * 2**20 if not pytest_side else default_abs)


def test_the_history_tracks_the_series_the_table_names():
    assert list(series.METRICS) == ["latency", "activation_memory", "instructions", "compile_time",
                                    "compile_time_warm"]
    assert series.METRICS == metrics.tracked_series()


def test_what_confirms_a_history_series_is_a_series_or_label_the_table_has():
    """A deterministic series confirms itself; a timed one names a deterministic series and an A/B speed label
    that exist (vitcnn/history/confirm.py reads them), or nothing (compile time)."""
    tracked = metrics.tracked_series()
    assert {name for name, s in tracked.items() if s.deterministic} == {"activation_memory", "instructions"}
    for s in tracked.values():
        assert s.confirmed_by is None or tracked[s.confirmed_by].deterministic
        assert s.ab_label is None or s.ab_label in metrics.SPEED.regressions
        assert not (s.deterministic and (s.confirmed_by or s.ab_label))
    assert (tracked["latency"].confirmed_by, tracked["latency"].ab_label) == ("instructions", "slower")
    assert tracked["instructions"].tolerance == metrics.GateOptions().instructions_tolerance
