"""The pytest options load before pytest parses arguments: without torch, numpy or scipy, and with the names and
defaults of the code they configure (one source each: settings.AXES and PROFILES, MeasureOptions, the gate's table
of metrics)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from vitcnn import options, settings
from vitcnn.gate import metrics


def test_loading_the_options_imports_no_torch_numpy_or_scipy():
    code = ("import sys, vitcnn.options; heavy = {'torch', 'numpy', 'scipy', 'timm'} & set(sys.modules); "
            "print(sorted(heavy)); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_axis_profile_and_gate_parameter_has_its_option():
    parser = options.argparse_options()
    names = {name for action in parser._actions for name in action.option_strings}
    assert {axis.pytest_option for axis in settings.AXES.values()} <= names
    assert {f"--vitcnn-{p.option}" for p in metrics.PARAMETERS.values() if p.option and p.in_pytest} <= names
    defaults = parser.parse_args([])
    measure = options.measure_options(lambda option: options.option_value(defaults, option))
    assert measure == dataclasses.replace(options.MeasureOptions(), compile_times=None, eager_twin=None)
    assert metrics.options_from(lambda option: options.option_value(defaults, option), "--vitcnn-",
                                pytest=True) == metrics.GateOptions()
    assert {axis.name for axis in settings.AXES.values()} == {f.name for f in dataclasses.fields(settings.Axes)}
