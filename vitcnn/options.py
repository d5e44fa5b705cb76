"""vitcnn's pytest command-line options and the MeasureOptions they become, light enough to load before pytest
parses arguments.

Installed, it is a `pytest11` entry point, so `--vitcnn-baseline-dir /some/existing/dir` is read as an option value
and never mistaken for a path to collect. Nothing here imports torch, numpy or scipy (tests/test_options.py checks
it): the axis options come from settings.AXES, the profiles from settings.PROFILES, the measurement defaults from
MeasureOptions and the gate's thresholds from the gate's table of metrics (vitcnn/gate/metrics.py).

It also makes `--benchmark-json=out/run.json` create `out/`: pytest-benchmark opens that file while pytest parses
the command line (argparse.FileType), before any plugin hook could make the directory.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest

from vitcnn import settings
from vitcnn.gate.metrics import add_gate_options
from vitcnn.measure import allocator
from vitcnn.measure.options import MeasureOptions

METRICS = ("time", "instructions")
ON_OFF = {"on": True, "off": False, None: None}  # None: the profile decides (measure.options.for_profile)


def measure_options(getoption: Callable[[str], object]) -> MeasureOptions:
    """MeasureOptions from the --vitcnn-* options (`getoption(name)`: pytest's config.getoption, or the same
    lookup on a side's options in `vitcnn ab`), so both read one set of names."""
    return MeasureOptions(
        target_seconds=getoption("--vitcnn-target-seconds"), warmup_seconds=getoption("--vitcnn-warmup-seconds"),
        min_rounds=getoption("--vitcnn-min-rounds"), max_rounds=getoption("--vitcnn-max-rounds"),
        inference_mode=not getoption("--vitcnn-no-inference-mode"), seed=getoption("--vitcnn-seed"),
        compile_times=ON_OFF[getoption("--vitcnn-compile-times")], eager_twin=ON_OFF[getoption("--vitcnn-eager-twin")],
    )


def _add_vitcnn_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("vitcnn", "vitcnn: vision backbone speed/memory suite")
    defaults = MeasureOptions()
    group.addoption("--vitcnn-profile", default=None,
                    help=f"settings profile: {', '.join(settings.PROFILES)} (default: "
                         f"{settings.default_profile('cpu').name} on CPU, {settings.default_profile('cuda').name} "
                         f"on GPU)")
    for axis in settings.AXES.values():
        group.addoption(axis.pytest_option, default=None, metavar="A,B,...",
                        help=f"comma-separated override of the {axis.name} axis")
    group.addoption("--vitcnn-device", default=None, help="cuda or cpu (default: cuda if available)")
    group.addoption("--vitcnn-threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    group.addoption("--vitcnn-target-seconds", type=float, default=defaults.target_seconds,
                    help="timed seconds per setting; rounds = this / time per call (default: %(default)s)")
    group.addoption("--vitcnn-warmup-seconds", type=float, default=defaults.warmup_seconds,
                    help="warm-up seconds per setting after compiling, before timing (default: %(default)s)")
    group.addoption("--vitcnn-min-rounds", type=int, default=defaults.min_rounds,
                    help="fewest timed calls per setting (default: %(default)s)")
    group.addoption("--vitcnn-max-rounds", type=int, default=defaults.max_rounds,
                    help="most timed calls per setting (default: %(default)s)")
    group.addoption("--vitcnn-seed", type=int, default=defaults.seed,
                    help="seed torch's RNG before each setting's model and input are built: the same weights and "
                         "input in every process (default: not seeded)")
    group.addoption("--vitcnn-malloc", choices=allocator.MODES, default="fixed",
                    help="glibc malloc policy: fixed (mmap and trim thresholds set, so timed calls take no page "
                         "faults; the default) or default (glibc's own: faults per call vary between processes); "
                         "recorded in every run (vitcnn/measure/allocator.py)")
    group.addoption("--vitcnn-no-inference-mode", action="store_true",
                    help="run forwards with autograd on (keeps activations): a planted memory regression")
    group.addoption("--vitcnn-compile-times", choices=("on", "off"), default=None,
                    help="compiled settings: also time a cold compile (empty cache) and a warm one (default: on "
                         "for the smoke and blog-lite profiles)")
    group.addoption("--vitcnn-eager-twin", choices=("on", "off"), default=None,
                    help="compiled settings: time the model eagerly in blocks alternating with the compiled ones, "
                         "for speedup over eager and memory compression (default: on for smoke and blog-lite)")
    group.addoption("--vitcnn-metric", choices=METRICS, default="time",
                    help="time: wall time (and memory, FLOPs, ...); instructions: also count each setting's "
                         "instructions per call under Callgrind (CPU only, needs valgrind; docs/instructions.md)")
    group.addoption("--vitcnn-gate", action="store_true",
                    help="compare this run with <baseline dir>/<slug>.json; fail the session on a regression")
    group.addoption("--vitcnn-save-baseline", action="store_true",
                    help="save (merge) this run into <baseline dir>/<slug>.json")
    group.addoption("--vitcnn-baseline-dir", default="baselines", help="where baselines live (default: %(default)s)")
    add_gate_options(group.addoption, "--vitcnn-", pytest=True)
    group.addoption("--vitcnn-gate-markdown", default=None, metavar="FILE", help="gate: write the verdicts as Markdown")
    group.addoption("--vitcnn-report", default=None, metavar="DIR", help="write the report (figures, report.md) to DIR")
    group.addoption("--vitcnn-shard", default=None, metavar="K/N",
                    help="run only shard K of N (1-based) of the selected settings, balanced by estimated cost "
                         "(default: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX + VITCNN_SHARD_COUNT if set)")
    group.addoption("--vitcnn-compile-cache", default=None, metavar="DIR",
                    help="load torch.compile artifacts from DIR before the sweep and add this run's after it "
                         "(torch.compiler.save_cache_artifacts)")


class _ArgparseAdapter:
    """pytest's `parser.getgroup(...).addoption(...)` onto an argparse parser (the same calls, the same names)."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser

    def getgroup(self, *args, **kwargs) -> _ArgparseAdapter:
        return self

    def addoption(self, *names: str, **kwargs) -> None:
        self.parser.add_argument(*names, **kwargs)


def argparse_options(prog: str = "vitcnn options") -> argparse.ArgumentParser:
    """The plugin's --vitcnn-* options (and pytest's `-p MODULE`) as an argparse parser: how `vitcnn ab` reads a
    side's `--a-opts`/`--b-opts` with exactly the names and defaults `pytest --benchmark-only` takes."""
    parser = argparse.ArgumentParser(prog=prog, add_help=False, allow_abbrev=False, exit_on_error=False)
    parser.add_argument("-p", dest="plugins", action="append", default=[], metavar="MODULE",
                        help="import MODULE and call its pytest_configure(None), as pytest's -p would")
    _add_vitcnn_options(_ArgparseAdapter(parser))
    return parser


def option_value(namespace: argparse.Namespace, option: str):
    """The value of `option` ("--vitcnn-x-y") in a namespace from argparse_options (pytest's getoption by name)."""
    return getattr(namespace, option.lstrip("-").replace("-", "_"))


def _creating_parent(opener):
    """`opener` (an argparse type that opens a file) that first creates the file's missing parent directories."""

    def open_path(path: str):
        if path != "-":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return opener(path)

    open_path.vitcnn_creates_parent = True
    return open_path


def _patch_benchmark_json(parser: pytest.Parser) -> bool:
    """Wrap the type of pytest-benchmark's --benchmark-json action; True once it is (or was) wrapped.

    pytest keeps no public handle on an option's argparse action, so this reads the parser's actions; if that
    ever changes, nothing breaks: a missing directory is then pytest-benchmark's usage error, before anything ran.
    """
    actions = getattr(getattr(parser, "optparser", None), "_actions", [])
    for action in actions:
        if "--benchmark-json" in action.option_strings and callable(action.type):
            if not getattr(action.type, "vitcnn_creates_parent", False):
                action.type = _creating_parent(action.type)
            return True
    return False


class _PatchWhenRegistered:
    """Wraps --benchmark-json once pytest-benchmark registers, if it registers after this plugin."""

    def __init__(self, parser: pytest.Parser) -> None:
        self.parser = parser

    def pytest_plugin_registered(self, plugin, plugin_name: str, manager) -> None:
        _patch_benchmark_json(self.parser)


@pytest.hookimpl(trylast=True)
def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    _add_vitcnn_options(parser)
    if not _patch_benchmark_json(parser):
        pluginmanager.register(_PatchWhenRegistered(parser), "vitcnn-benchmark-json-parent")
