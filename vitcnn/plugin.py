"""pytest plugin: the hooks and the measuring fixture.

Loaded by the repository's conftest.py (its options live in vitcnn.options). Any test that asks for
`vitcnn_setting` is parametrized over the selected profile's settings; the `vitcnn_measure` fixture measures one
setting through pytest-benchmark's `benchmark`. The session's state and its end live beside it (vitcnn/session.py):
at session end the session's runfile.Run is built once, its JSON made sure to be on disk, and that one Run handed
to the gate, the baseline store, the report and the terminal table (vitcnn.summary), each of which may fail
without losing the measurements.
"""

from __future__ import annotations

import signal
import threading

import pytest
import torch

from vitcnn import code_identity, settings
from vitcnn.fingerprint import machine_fields
from vitcnn.measure import allocator
from vitcnn.measure.options import for_profile
from vitcnn.measure.pipeline import measure
from vitcnn.measure.timing import plain_timer
from vitcnn.options import measure_options
from vitcnn.result import Result
from vitcnn.runfile import vitcnn_section
from vitcnn.scale import compile_cache, shard
from vitcnn.session import CountingSession, SessionState, apply_shard, session_end

STATE = pytest.StashKey[SessionState]()


def _default_to_benchmarks(config: pytest.Config) -> None:
    """`pytest --benchmark-only` with no path runs benchmarks/ (testpaths points plain `pytest` at tests/)."""
    from_testpaths = getattr(config, "args_source", None) == pytest.Config.ArgsSource.TESTPATHS
    benchmarks = config.rootpath / "benchmarks"
    if from_testpaths and config.getoption("benchmark_only", False) and benchmarks.is_dir():
        config.args[:] = [str(benchmarks)]


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _sigterm_interrupts() -> None:
    """A time limit's SIGTERM (Slurm, `timeout`, a CI job cancelled) ends the session as Ctrl-C does, so that the
    settings measured so far are written to the run JSON instead of dying with the process."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _sigterm_interrupts()
    config.addinivalue_line("markers", "vitcnn: a vitcnn benchmark setting")
    config.addinivalue_line("markers", "vitcnn_task(task): the settings task this benchmark function measures")
    _default_to_benchmarks(config)
    config.option.benchmark_save_data = True  # raw samples in saved runs too: the gate tests significance on them
    requested = config.getoption("--vitcnn-device")
    if requested not in (None, "cpu", "cuda"):
        raise pytest.UsageError(f"--vitcnn-device must be cpu or cuda, got {requested!r}")
    if requested == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError("--vitcnn-device cuda asked for, but torch sees no CUDA device")
    device = torch.device(requested or ("cuda" if torch.cuda.is_available() else "cpu"))
    if config.getoption("--vitcnn-threads"):
        torch.set_num_threads(config.getoption("--vitcnn-threads"))
    allocator.apply(config.getoption("--vitcnn-malloc"))  # before any setting allocates; the fingerprint records it
    profile = config.getoption("--vitcnn-profile") or settings.default_profile(device.type).name
    given = {axis: config.getoption(axis.pytest_option) for axis in settings.AXES.values()}
    narrowed = {axis.pytest_option: value for axis, value in given.items() if value}
    try:
        overrides = settings.parse_overrides({axis.name: value for axis, value in given.items()})
        # Device-specific limits (e.g. no TF32 on CPU) become visible skips, not silently missing settings.
        selected = settings.select(profile, "cuda", overrides)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    selected, shard_record = apply_shard(config, selected)
    options = measure_options(config.getoption)
    selection = settings.describe_selection(profile, narrowed, config.getoption("keyword", None) or None)
    config.stash[STATE] = SessionState(device, profile, selected, options, shard=shard_record, selection=selection,
                                       code=code_identity.collect(config.rootpath))
    if shard_record:
        config.stash[STATE].lines.append(shard.describe(shard_record))
    if config.getoption("--vitcnn-metric") == "instructions":
        from vitcnn.measure.instructions import unavailable_reason

        if device.type != "cpu":
            raise pytest.UsageError("--vitcnn-metric instructions counts on the CPU only (valgrind cannot see a "
                                    "GPU's work): add --vitcnn-device cpu")
        why_not = unavailable_reason()
        if why_not:
            raise pytest.UsageError(f"--vitcnn-metric instructions: {why_not}")
        config.stash[STATE].counting = CountingSession(config, profile, config.stash[STATE].lines)
        config.pluginmanager.register(config.stash[STATE].counting, "vitcnn-instructions")
    if config.getoption("--vitcnn-compile-cache"):
        config.stash[STATE].lines.append(compile_cache.load(config.getoption("--vitcnn-compile-cache"), device))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each benchmark function gets the selected settings of its task (`@pytest.mark.vitcnn_task("train")`;
    unmarked: "infer"), so inference keeps its test names and training gets its own function."""
    if "vitcnn_setting" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("vitcnn_task")
        task = marker.args[0] if marker else "infer"
        selected = [s for s in metafunc.config.stash[STATE].selected if s.task == task]
        metafunc.parametrize("vitcnn_setting", selected, ids=[s.id for s in selected])


def _has_no_setting(item: pytest.Item) -> bool:
    """A benchmark function whose task has no selected setting (pytest would list it as an empty-set skip)."""
    if "vitcnn_setting" not in getattr(item, "fixturenames", ()):
        return False
    callspec = getattr(item, "callspec", None)
    return callspec is None or not isinstance(callspec.params.get("vitcnn_setting"), settings.Setting)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect a benchmark function with no setting of its task; under --benchmark-only, deselect plain tests
    instead of listing each as skipped."""
    empty = [item for item in items if _has_no_setting(item)]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [item for item in items if item not in empty]
    if not config.getoption("benchmark_only", False):
        return
    keep = [item for item in items if "benchmark" in getattr(item, "fixturenames", ())]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep


@pytest.fixture
def vitcnn_measure(request: pytest.FixtureRequest, benchmark):
    """Measure a Setting through `benchmark`; OOM skips the test, any other failure fails it (status kept), except
    a known torch bug on the torch release that has it, which is an xfail (still an `error` result in the run).

    A sticky CUDA error (illegal address, a failed kernel execution) poisons the process: the sweep stops after
    this setting with one error naming it, instead of failing every later setting for this one's reason.
    """
    state = request.config.stash[STATE]
    options = for_profile(state.options, state.profile)

    def timer(call, rounds: int) -> list[float]:
        if benchmark.disabled:
            return plain_timer(call, rounds)
        benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=0)
        return list(benchmark.stats.stats.data)

    def run(setting: settings.Setting) -> Result:
        why_not = settings.invalid_reason(setting, state.device.type)
        if why_not:
            state.record(setting, "skipped", why_not)
            pytest.skip(f"{setting.id}: {why_not}")
        outcome = measure(setting, state.device, timer, options)
        state.record(setting, outcome.status, outcome.reason)
        if outcome.status == "oom":
            pytest.skip(f"oom: {outcome.reason}")
        if outcome.status == "error":
            if outcome.fatal:
                request.session.shouldstop = (
                    f"vitcnn: sweep stopped: {setting.id} hit a CUDA error that leaves the device unusable for "
                    f"later settings: {outcome.reason}")
            if outcome.upstream:  # recorded as an error result; not this suite's failure on this torch
                pytest.xfail(f"{setting.id}: {outcome.reason}")
            pytest.fail(f"{setting.id}: {outcome.reason}", pytrace=False)
        benchmark.extra_info.update(outcome.info)
        if state.counting is not None:
            state.counting.add(setting, benchmark.extra_info)
        return outcome

    return run


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    machine_info.update(machine_fields(config.stash[STATE].device))


def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict) -> None:
    state = config.stash[STATE]
    output_json["vitcnn"] = vitcnn_section(state.profile, list(state.records.values()), state.shard, state.selection,
                                           state.code)


def pytest_unconfigure(config: pytest.Config) -> None:
    if signal.getsignal(signal.SIGTERM) is _interrupt:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is not None:
        session_end(session, state)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or state.run is None:
        return
    from vitcnn.summary import summary_table

    terminalreporter.write_sep("-", f"vitcnn: {state.profile} on {state.device.type}")
    terminalreporter.write_line(summary_table(state.run))
    for line in state.lines:
        terminalreporter.write_line(line)
