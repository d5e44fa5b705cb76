"""pytest plugin: the sweep's parametrization, the measuring fixture, the JSON hooks and the session end.

Loaded by the repository's conftest.py (its options live in vitcnn.options). Any test that asks for
`vitcnn_setting` is parametrized over the selected profile's settings; the `vitcnn_measure` fixture measures one
setting through pytest-benchmark's `benchmark`. At session end the plugin builds the session's runfile.Run once,
makes sure its JSON is on disk, and hands that one Run to the gate, the baseline store, the report and the
terminal table (vitcnn.summary), each of which may fail without losing the measurements.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from pytest_benchmark.utils import safe_dumps

from vitcnn import code_identity, fingerprint, settings
from vitcnn.measure.pipeline import MeasureOptions, Outcome, for_profile, measure
from vitcnn.measure.timing import plain_timer
from vitcnn.options import AXIS_OPTIONS
from vitcnn.runfile import Run, parse_run, write_atomic
from vitcnn.scale import compile_cache, shard
from vitcnn.zoo import models

FALLBACK_JSON = "vitcnn-last-run.json"  # in pytest-benchmark's storage dir, when --benchmark-json is not given

@dataclass
class SessionState:
    """What the plugin knows across the session: the device, the settings and each one's outcome."""

    device: torch.device
    profile: str
    selected: list[settings.Setting]
    options: MeasureOptions
    records: dict[str, dict] = field(default_factory=dict)  # setting id -> status entry
    run: Run | None = None  # the session's results, built once at session end
    lines: list[str] = field(default_factory=list)  # what the session end has to say under the table
    shard: dict | None = None  # the run JSON's vitcnn.shard section when this session runs one shard
    selection: str | None = None  # the profile and what narrowed it (axis options, -k), said in every report
    code: dict | None = None  # the code measured with, read at session start (code_identity.py)
    counting: CountingSession | None = None  # --vitcnn-metric instructions

    def record(self, setting: settings.Setting, status: str, reason: str | None) -> None:
        self.records[setting.id] = status_entry(setting, status, reason)


def status_entry(setting: settings.Setting, status: str, reason: str | None) -> dict:
    """One setting's entry in the run JSON's vitcnn.settings list (every setting, timed or not)."""
    return {"setting": setting.as_dict(), "id": setting.id, "status": status, "reason": reason}


def describe_selection(profile: str, options: dict[str, str], keyword: str | None = None) -> str:
    """The selection in words, e.g. "smoke with --vitcnn-models vit_t16 --vitcnn-res 64, -k 'eager'": a report
    must not call a narrowed run by its profile's name alone."""
    narrowed = " ".join(f"{option} {value}" for option, value in options.items())
    text = f"{profile} with {narrowed}" if narrowed else profile
    return f"{text}, -k {keyword!r}" if keyword else text


def vitcnn_section(profile: str, entries: list[dict], shard_record: dict | None = None,
                   selection: str | None = None, code: dict | None = None) -> dict:
    """The run JSON's top-level `vitcnn` section (runfile.py reads it)."""
    section = {"schema": 1, "profile": profile, "selection": selection or profile, "settings": entries}
    if code is not None:
        section["code"] = code
    if shard_record is not None:
        section["shard"] = shard_record
    return section


def machine_fields(device: torch.device) -> dict:
    """What vitcnn adds to pytest-benchmark's machine_info: the fingerprint and its slug."""
    fp = fingerprint.collect(device)
    return {"vitcnn_fingerprint": fp, "vitcnn_slug": fingerprint.slug(fp)}


def measure_options(getoption) -> MeasureOptions:
    """MeasureOptions from the --vitcnn-* options (`getoption(name)`: pytest's config.getoption, or the same
    lookup on a side's options in `vitcnn ab`), so both read one set of names."""
    return MeasureOptions(
        target_seconds=getoption("--vitcnn-target-seconds"), warmup_seconds=getoption("--vitcnn-warmup-seconds"),
        min_rounds=getoption("--vitcnn-min-rounds"), max_rounds=getoption("--vitcnn-max-rounds"),
        inference_mode=not getoption("--vitcnn-no-inference-mode"),
        compile_times=ON_OFF[getoption("--vitcnn-compile-times")], eager_twin=ON_OFF[getoption("--vitcnn-eager-twin")],
    )


MAX_COUNTING_WORKERS = 4


class CountingSession:
    """--vitcnn-metric instructions: the settings that ran, counted after the last one was timed (so no count runs
    beside a timing) by a counting worker under callgrind and its plain compiling twin (vitcnn/ab/counted.py), with
    this session's profile, threads and `-p` modules; each count joins its setting's extra_info before
    pytest-benchmark writes the JSON."""

    def __init__(self, config: pytest.Config, profile: str, lines: list[str]) -> None:
        self.config, self.profile = config, profile
        self.pending: list[tuple[settings.Setting, dict]] = []  # (setting, its benchmark's extra_info)
        self.lines = lines  # the session's lines under the terminal table
        self.failed = 0

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int):
        """Count before pytest-benchmark's own session end writes the JSON (it is a wrapper too; this one runs
        first); a setting that could not be counted fails the session."""
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self.lines.append("vitcnn: instructions not counted: the session was interrupted")
        else:
            self.count_pending()
        yield
        if self.failed:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def add(self, setting: settings.Setting, extra_info: dict) -> None:
        self.pending.append((setting, extra_info))

    def count_pending(self) -> None:
        """Count every pending setting (once); a setting that cannot be counted keeps its timing and says why."""
        import tempfile
        import time

        from vitcnn.ab.counted import Counter, count_all, counted_fields
        from vitcnn.ab.sides import Checkout, Side, SideError

        if not self.pending:
            return
        pending, self.pending = self.pending, []
        config = self.config
        modules = [m for m in (getattr(config.option, "plugins", None) or []) if not m.startswith("no:")]
        args = ["--vitcnn-device", "cpu", "--vitcnn-profile", self.profile, *sum((["-p", m] for m in modules), []),
                *(["--vitcnn-no-inference-mode"] if config.getoption("--vitcnn-no-inference-mode") else [])]
        logs = Path(tempfile.mkdtemp(prefix="vitcnn-callgrind-logs-"))
        started = time.perf_counter()
        # valgrind runs a process on one core at a time: one counting worker (and its compiling twin) per core
        names = [str(k) for k in range(max(1, min(len(pending), os.cpu_count() or 1, MAX_COUNTING_WORKERS)))]
        rows = [{name: pending[i + k][0] for k, name in enumerate(names) if i + k < len(pending)}
                for i in range(0, len(pending), len(names))]
        counters = {}
        try:
            for name in names:
                counters[name] = Counter(Side(f"counting-{name}"), Checkout(None), args, logs)
            for counter in counters.values():
                counter.hello()
            infos = iter(extra_info for _, extra_info in pending)
            for row, done in zip(rows, count_all(counters, rows)):
                for name in row:
                    next(infos).update(counted_fields(done[name]))
        except SideError as exc:
            self.lines.append(f"vitcnn: instructions NOT counted: {exc}")
        finally:
            for counter in counters.values():
                counter.close()
        missing = [f"{s.id}: {info.get('instructions_error') or 'not counted'}" for s, info in pending
                   if not info.get("instructions_per_call")]
        self.failed = len(missing)
        self.lines.append(f"vitcnn: instructions of {len(pending) - len(missing)} setting(s) counted under callgrind "
                          f"in {time.perf_counter() - started:.0f} s (worker logs in {logs})")
        if missing:
            self.lines += [f"vitcnn: instructions NOT counted for {len(missing)} setting(s):",
                           *(f"  {line}" for line in missing)]


ON_OFF = {"on": True, "off": False, None: None}  # None: the profile decides (pipeline.for_profile)
STATE = pytest.StashKey[SessionState]()


def _default_to_benchmarks(config: pytest.Config) -> None:
    """`pytest --benchmark-only` with no path runs benchmarks/ (testpaths points plain `pytest` at tests/)."""
    from_testpaths = getattr(config, "args_source", None) == pytest.Config.ArgsSource.TESTPATHS
    benchmarks = config.rootpath / "benchmarks"
    if from_testpaths and config.getoption("benchmark_only", False) and benchmarks.is_dir():
        config.args[:] = [str(benchmarks)]


def _split(value: str, parse) -> tuple:
    try:
        return tuple(parse(v.strip()) for v in value.split(",") if v.strip())
    except ValueError as exc:
        raise pytest.UsageError(f"cannot parse {value!r}: {exc}") from None


AXIS_CHOICES = {"precisions": settings.PRECISIONS, "sdpa": settings.SDPA_BACKENDS,
                "compile_modes": settings.COMPILE_MODES, "layouts": settings.LAYOUTS, "tasks": settings.TASKS}


def _check_axes(profile: str, overrides: dict[str, tuple]) -> None:
    """Axis values no setting could ever take are usage errors naming the valid choices, not silent skips."""
    option = {axis: opt for opt, (axis, _) in AXIS_OPTIONS.items()}
    for axis, choices in AXIS_CHOICES.items():
        bad = [v for v in overrides.get(axis, ()) if v not in choices]
        if bad:
            raise pytest.UsageError(f"{option[axis]}: unknown value {', '.join(map(repr, bad))}; "
                                    f"choose from {', '.join(choices)}")
    if any(b < 1 for b in overrides.get("batches", ())):
        raise pytest.UsageError(f"{option['batches']}: batch sizes must be >= 1, got {overrides['batches']}")
    for model in overrides.get("models") or settings.profile_axes(profile).models:
        for res in overrides.get("resolutions", ()):
            try:
                models.check_img_size(model, res)
            except ValueError as exc:
                raise pytest.UsageError(f"{option['resolutions']}: {exc}") from None


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
    profile = config.getoption("--vitcnn-profile") or settings.DEFAULT_PROFILE[device.type]
    narrowed = {opt: config.getoption(opt) for opt in AXIS_OPTIONS if config.getoption(opt)}
    overrides = {AXIS_OPTIONS[opt][0]: _split(value, AXIS_OPTIONS[opt][1]) for opt, value in narrowed.items()}
    try:
        _check_axes(profile, overrides)
        # Device-specific limits (e.g. no TF32 on CPU) become visible skips, not silently missing settings.
        selected = settings.profile_settings(profile, "cuda", **overrides)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    selected, shard_record = _apply_shard(config, selected)
    options = measure_options(config.getoption)
    selection = describe_selection(profile, narrowed, config.getoption("keyword", None) or None)
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


def _apply_shard(config: pytest.Config, selected: list[settings.Setting]):
    """Only this shard's settings are parametrized (the others belong to other shards, not deselected here)."""
    try:
        spec = shard.resolve(config.getoption("--vitcnn-shard"))
        if spec is None:
            return selected, None
        mine = shard.apply(selected, spec)
    except shard.ShardError as exc:
        raise pytest.UsageError(str(exc)) from None
    return mine, shard.record(spec, selected, mine)


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

    def run(setting: settings.Setting) -> Outcome:
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


def _run_json(config: pytest.Config) -> dict:
    """This session's run in the saved-JSON format (raw samples included), built the way pytest-benchmark does."""
    session = config._benchmarksession
    output = config.hook.pytest_benchmark_generate_json(
        config=config, benchmarks=session.benchmarks, include_data=True,
        machine_info=session.get_machine_info(), commit_info={})
    config.hook.pytest_benchmark_update_json(config=config, benchmarks=session.benchmarks, output_json=output)
    return json.loads(safe_dumps(output))  # exactly what pytest-benchmark writes (params become strings)


def _json_on_disk(config: pytest.Config, data: dict) -> Path:
    """Where this session's run JSON is on disk, writing it first if pytest-benchmark did not: with no timing at
    all (e.g. every setting OOM) into --benchmark-json, and without --benchmark-json into pytest-benchmark's
    storage directory (.benchmarks/ by default), so nothing after the measurements can lose them."""
    bench_session = config._benchmarksession
    if bench_session.json:
        if not bench_session.benchmarks:
            bench_session.save_json(data)  # pytest-benchmark saves nothing without a timing; the statuses count
        target = bench_session.json  # an open file up to pytest-benchmark 5.2, a path from 5.3 on
        return Path(target if isinstance(target, (str, os.PathLike)) else target.name)
    storage = getattr(bench_session.storage, "path", None) or config.rootpath / ".benchmarks"
    path = Path(storage) / FALLBACK_JSON
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    return path


def pytest_unconfigure(config: pytest.Config) -> None:
    if signal.getsignal(signal.SIGTERM) is _interrupt:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After pytest-benchmark has saved its JSON: build the Run, make sure it is on disk, then gate, save the
    baseline and report, as asked. Each of those may fail; the message then says where the measurements are."""
    config = session.config
    state = config.stash.get(STATE, None)
    if state is not None and config.getoption("--vitcnn-compile-cache"):
        state.lines.append(compile_cache.save(config.getoption("--vitcnn-compile-cache"), state.device))
    if state is None or not state.records:
        return
    data = _run_json(config)
    try:
        saved_at = _json_on_disk(config, data)
    except OSError as exc:
        saved_at = None
        state.lines.append(f"vitcnn: could NOT write this run's JSON: {exc}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    state.run = parse_run(data, str(saved_at or "this pytest session"))
    if saved_at is not None:
        state.lines.append(f"vitcnn: this run's measurements are in {saved_at}")
    if _finish_run(config, state.run, state.lines, saved_at):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _gate_options(config: pytest.Config):
    from vitcnn.gate.rules import GateOptions

    given = {"tolerance": config.getoption("--vitcnn-tolerance"), "alpha": config.getoption("--vitcnn-alpha"),
             "memory_rel_tolerance": config.getoption("--vitcnn-memory-tolerance"),
             "instructions_tolerance": config.getoption("--vitcnn-instructions-tolerance"),
             "allow_missing": config.getoption("--vitcnn-allow-missing"),
             "allow_cross_machine": config.getoption("--vitcnn-allow-cross-machine")}
    return GateOptions(**{k: v for k, v in given.items() if v is not None})


def _gate(config: pytest.Config, run: Run, lines: list[str]) -> bool:
    from vitcnn.gate import baseline, rules, verdicts

    try:
        comparison = rules.gate_against_baseline(run, config.getoption("--vitcnn-baseline-dir"), _gate_options(config))
    except baseline.BaselineError as exc:
        lines.append(f"vitcnn gate: FAILED, cannot compare: {exc}")
        return True
    lines += ["", verdicts.format_table(comparison)]
    markdown_path = config.getoption("--vitcnn-gate-markdown")
    if markdown_path:
        Path(markdown_path).write_text(verdicts.to_markdown(comparison))
    lines.append(f"vitcnn gate: {'FAILED' if comparison.has_regression else 'passed'}: {comparison.summary()}")
    return comparison.has_regression


def _save_baseline(config: pytest.Config, run: Run, lines: list[str]) -> bool:
    from vitcnn.gate import baseline

    try:
        lines.append(f"vitcnn: baseline saved to {baseline.save_baseline(run, config.getoption('--vitcnn-baseline-dir'))}")
    except baseline.BaselineError as exc:
        lines.append(f"vitcnn: baseline NOT saved: {exc}")
        return True
    return False


def _report(config: pytest.Config, run: Run, lines: list[str]) -> bool:
    from vitcnn import report

    lines.append(f"vitcnn: report written to {report.write_report([run], Path(config.getoption('--vitcnn-report')))}")
    return False


def _finish_run(config: pytest.Config, run: Run, lines: list[str], saved_at: Path | None) -> bool:
    """Gate, then save the baseline and write the report, as asked; True when the session must fail.

    The gate runs before the save so a run is never compared with itself. A step that crashes is reported with
    where the measurements are, and the next step still runs.
    """
    steps = (("--vitcnn-gate", "gate", _gate), ("--vitcnn-save-baseline", "baseline save", _save_baseline),
             ("--vitcnn-report", "report", _report))
    failed = False
    for option, name, step in steps:
        if not config.getoption(option):
            continue
        try:
            failed |= step(config, run, lines)
        except Exception as exc:  # any failure here must not hide the measurements
            where = f"they are in {saved_at}" if saved_at else "they could not be written either"
            lines.append(f"vitcnn: {name} FAILED ({type(exc).__name__}: {exc}); the measurements are safe: {where}")
            failed = True
    return failed


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or state.run is None:
        return
    from vitcnn.summary import summary_table

    terminalreporter.write_sep("-", f"vitcnn: {state.profile} on {state.device.type}")
    terminalreporter.write_line(summary_table(state.run))
    for line in state.lines:
        terminalreporter.write_line(line)
