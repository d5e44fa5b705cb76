"""pytest plugin: the sweep's parametrization, the measuring fixture, the JSON hooks and the session-end gate.

Loaded by the repository's conftest.py (its options live in vitcnn.options). Any test that asks for
`vitcnn_setting` is parametrized over the selected profile's settings; the `vitcnn_measure` fixture measures one
setting through pytest-benchmark's `benchmark`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from pytest_benchmark.utils import safe_dumps

from vitcnn import compile_cache, fingerprint, settings, shard
from vitcnn.measure import MeasureOptions, Outcome, measure
from vitcnn.options import AXIS_OPTIONS
from vitcnn.runfile import Run, parse_run
from vitcnn.timing import plain_timer

@dataclass
class SessionState:
    """What the plugin knows across the session: the device, the settings and each one's outcome."""

    device: torch.device
    profile: str
    selected: list[settings.Setting]
    options: MeasureOptions
    records: dict[str, dict] = field(default_factory=dict)  # setting id -> status entry
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    gate_lines: list[str] = field(default_factory=list)
    shard: dict | None = None  # the run JSON's vitcnn.shard section when this session runs one shard

    def record(self, setting: settings.Setting, status: str, reason: str | None) -> None:
        self.records[setting.id] = {"setting": setting.as_dict(), "id": setting.id, "status": status, "reason": reason}


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


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vitcnn: a vitcnn benchmark setting")
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
    overrides = {axis: _split(config.getoption(opt), parse)
                 for opt, (axis, parse) in AXIS_OPTIONS.items() if config.getoption(opt)}
    try:
        # Device-specific limits (e.g. no TF32 on CPU) become visible skips, not silently missing settings.
        selected = settings.profile_settings(profile, "cuda", **overrides)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    selected, shard_record = _apply_shard(config, selected)
    options = MeasureOptions(
        target_seconds=config.getoption("--vitcnn-target-seconds"),
        warmup_seconds=config.getoption("--vitcnn-warmup-seconds"),
        min_rounds=config.getoption("--vitcnn-min-rounds"), max_rounds=config.getoption("--vitcnn-max-rounds"),
        inference_mode=not config.getoption("--vitcnn-no-inference-mode"),
    )
    config.stash[STATE] = SessionState(device, profile, selected, options, shard=shard_record)
    if shard_record:
        config.stash[STATE].gate_lines.append(shard.describe(shard_record))
    if config.getoption("--vitcnn-compile-cache"):
        config.stash[STATE].gate_lines.append(compile_cache.load(config.getoption("--vitcnn-compile-cache"), device))


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
    if "vitcnn_setting" in metafunc.fixturenames:
        selected = metafunc.config.stash[STATE].selected
        metafunc.parametrize("vitcnn_setting", selected, ids=[s.id for s in selected])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under --benchmark-only, deselect plain tests instead of listing each as skipped."""
    if not config.getoption("benchmark_only", False):
        return
    keep = [item for item in items if "benchmark" in getattr(item, "fixturenames", ())]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep


@pytest.fixture
def vitcnn_measure(request: pytest.FixtureRequest, benchmark):
    """Measure a Setting through `benchmark`; OOM skips the test, any other failure fails it (status kept)."""
    state = request.config.stash[STATE]

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
        outcome = measure(setting, state.device, timer, state.options)
        state.outcomes[setting.id] = outcome
        state.record(setting, outcome.status, outcome.reason)
        if outcome.status == "oom":
            pytest.skip(f"oom: {outcome.reason}")
        if outcome.status == "error":
            pytest.fail(f"{setting.id}: {outcome.reason}", pytrace=False)
        benchmark.extra_info.update(outcome.info)
        return outcome

    return run


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    fp = fingerprint.collect(config.stash[STATE].device)
    machine_info["vitcnn_fingerprint"] = fp
    machine_info["vitcnn_slug"] = fingerprint.slug(fp)


def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict) -> None:
    state = config.stash[STATE]
    output_json["vitcnn"] = {"schema": 1, "profile": state.profile, "settings": list(state.records.values())}
    if state.shard is not None:
        output_json["vitcnn"]["shard"] = state.shard


def _run_json(config: pytest.Config) -> dict:
    """This session's run in the saved-JSON format (raw samples included), built the way pytest-benchmark does."""
    session = config._benchmarksession
    output = config.hook.pytest_benchmark_generate_json(
        config=config, benchmarks=session.benchmarks, include_data=True,
        machine_info=session.get_machine_info(), commit_info={})
    config.hook.pytest_benchmark_update_json(config=config, benchmarks=session.benchmarks, output_json=output)
    return json.loads(safe_dumps(output))  # exactly what pytest-benchmark writes (params become strings)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After pytest-benchmark has saved its JSON: save the baseline, gate, and report, as asked."""
    config = session.config
    state = config.stash.get(STATE, None)
    if state is not None and config.getoption("--vitcnn-compile-cache"):
        state.gate_lines.append(compile_cache.save(config.getoption("--vitcnn-compile-cache"), state.device))
    if state is None or not state.records:
        return
    bench_session = config._benchmarksession
    if bench_session.json and not bench_session.benchmarks:
        bench_session.save_json(_run_json(config))  # no timing at all (e.g. all OOM): statuses still saved
    if any(config.getoption(o) for o in ("--vitcnn-gate", "--vitcnn-save-baseline", "--vitcnn-report")):
        saved_as = getattr(config.getoption("benchmark_json", None), "name", None)
        run = parse_run(_run_json(config), str(saved_as or "this pytest session"))
        if _finish_run(config, run, state.gate_lines):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _gate_options(config: pytest.Config):
    from vitcnn.baseline import GateOptions

    given = {"tolerance": config.getoption("--vitcnn-tolerance"), "alpha": config.getoption("--vitcnn-alpha"),
             "memory_rel_tolerance": config.getoption("--vitcnn-memory-tolerance"),
             "allow_missing": config.getoption("--vitcnn-allow-missing")}
    return GateOptions(**{k: v for k, v in given.items() if v is not None})


def _finish_run(config: pytest.Config, run: Run, lines: list[str]) -> bool:
    """Gate, then save the baseline and write the report, as asked; True when the session must fail.

    The gate runs before the save so a run is never compared with itself.
    """
    from vitcnn import baseline

    failed = False
    directory = config.getoption("--vitcnn-baseline-dir")
    if config.getoption("--vitcnn-gate"):
        try:
            comparison = baseline.gate_against_baseline(run, directory, _gate_options(config))
        except baseline.BaselineError as exc:
            lines.append(f"vitcnn gate: FAILED, cannot compare: {exc}")
            failed = True
        else:
            lines += ["", baseline.format_table(comparison)]
            markdown_path = config.getoption("--vitcnn-gate-markdown")
            if markdown_path:
                Path(markdown_path).write_text(baseline.to_markdown(comparison))
            failed = comparison.has_regression
            lines.append(f"vitcnn gate: {'FAILED' if failed else 'passed'}: {comparison.summary()}")
    if config.getoption("--vitcnn-save-baseline"):
        try:
            lines.append(f"vitcnn: baseline saved to {baseline.save_baseline(run, directory)}")
        except baseline.BaselineError as exc:
            lines.append(f"vitcnn: baseline NOT saved: {exc}")
            failed = True
    if config.getoption("--vitcnn-report"):
        from vitcnn import report

        lines.append(f"vitcnn: report written to {report.write_report([run], Path(config.getoption('--vitcnn-report')))}")
    return failed


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not state.records:
        return
    from vitcnn.summary import summary_table

    terminalreporter.write_sep("-", f"vitcnn: {state.profile} on {state.device.type}")
    terminalreporter.write_line(summary_table(state.records, state.outcomes))
    for line in state.gate_lines:
        terminalreporter.write_line(line)
