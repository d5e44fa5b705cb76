"""Option defaults written as literals (so option parsing needs no torch) agree with the code they configure."""

from __future__ import annotations

import dataclasses

from vitcnn import options, settings
from vitcnn.gate.rules import GateOptions
from vitcnn.measure.pipeline import MeasureOptions


def test_defaults_match_the_code():
    measure_defaults = {f.name: f.default for f in dataclasses.fields(MeasureOptions)}
    assert {k: measure_defaults[k] for k in options.MEASURE_DEFAULTS} == options.MEASURE_DEFAULTS
    gate_defaults = {f.name: f.default for f in dataclasses.fields(GateOptions)}
    assert {k: gate_defaults[k] for k in options.GATE_DEFAULTS} == options.GATE_DEFAULTS
    assert options.PROFILE_NAMES == tuple(settings.PROFILES)
    assert {axis for axis, _ in options.AXIS_OPTIONS.values()} <= {f.name for f in dataclasses.fields(settings.Axes)}
