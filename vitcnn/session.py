"""The pytest session's state and its end: what the plugin (vitcnn/plugin.py) knows across a session, the run JSON
made sure to be on disk, and the steps after the measurements (instruction counts, gate, baseline save, report),
each of which may fail without losing them. pytest-benchmark splits its plugin the same way (plugin, session).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pytest_benchmark.utils import safe_dumps

from vitcnn import settings
from vitcnn.gate.metrics import options_from
from vitcnn.measure.options import MeasureOptions
from vitcnn.runfile import Run, parse_run, status_entry, write_atomic, write_output
from vitcnn.scale import compile_cache, shard

if TYPE_CHECKING:
    import torch

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


def apply_shard(config: pytest.Config, selected: list[settings.Setting]):
    """Only this shard's settings are parametrized (the others belong to other shards, not deselected here)."""
    try:
        spec = shard.resolve(config.getoption("--vitcnn-shard"))
        if spec is None:
            return selected, None
        mine = shard.apply(selected, spec)
    except shard.ShardError as exc:
        raise pytest.UsageError(str(exc)) from None
    return mine, shard.record(spec, selected, mine)


def run_json(config: pytest.Config) -> dict:
    """This session's run in the saved-JSON format (raw samples included), built the way pytest-benchmark does."""
    session = config._benchmarksession
    output = config.hook.pytest_benchmark_generate_json(
        config=config, benchmarks=session.benchmarks, include_data=True,
        machine_info=session.get_machine_info(), commit_info={})
    config.hook.pytest_benchmark_update_json(config=config, benchmarks=session.benchmarks, output_json=output)
    return json.loads(safe_dumps(output))  # exactly what pytest-benchmark writes (params become strings)


def json_on_disk(config: pytest.Config, data: dict) -> Path:
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


MAX_COUNTING_WORKERS = 4


class CountingSession:
    """--vitcnn-metric instructions: the settings that ran, counted after the last one was timed (so no count runs
    beside a timing) by a counting worker under callgrind and its plain compiling twin (vitcnn/workers/counting.py), with
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
        from vitcnn.workers import SideError
        from vitcnn.workers.checkout import Checkout
        from vitcnn.workers.counting import Counter, count_all, counted_fields
        from vitcnn.workers.process import Launch

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
                counters[name] = Counter(Launch(f"counting-{name}"), Checkout(None), args, logs)
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


def _gate(config: pytest.Config, run: Run, lines: list[str]) -> bool:
    from vitcnn.gate import baseline, rules, verdicts

    try:
        options = options_from(config.getoption, "--vitcnn-", pytest=True)
        comparison = rules.gate_against_baseline(run, config.getoption("--vitcnn-baseline-dir"), options)
    except baseline.BaselineError as exc:
        lines.append(f"vitcnn gate: FAILED, cannot compare: {exc}")
        return True
    lines += ["", verdicts.format_table(comparison), *_explain_hints(run, comparison)]
    markdown_path = config.getoption("--vitcnn-gate-markdown")
    if markdown_path:
        write_output(markdown_path, verdicts.to_markdown(comparison))
    lines.append(f"vitcnn gate: {'FAILED' if comparison.has_regression else 'passed'}: {comparison.summary()}")
    return comparison.has_regression


def _explain_hints(run: Run, comparison) -> list[str]:
    """For each `slower` row (at most three), the A/B that measures it again against the baseline's commit and
    explains it (docs/explain.md): a stored gate has no base side left to profile."""
    from vitcnn.explain.diff import ab_command

    slower = [v for v in comparison.verdicts if "slower" in v.labels and v.id in run.results]
    if not slower or not comparison.base_commit:  # without the baseline's commit an A/B would compare this checkout
        return []                                 # with itself
    hints = [f"vitcnn gate: where the time went: "
             f"`{ab_command(run.results[v.id].setting, comparison.base_commit, run.profile)}`" for v in slower[:3]]
    return hints + ([f"vitcnn gate: ... and {len(slower) - 3} more slower setting(s)"] if len(slower) > 3 else [])


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


def finish_run(config: pytest.Config, run: Run, lines: list[str], saved_at: Path | None) -> bool:
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


def session_end(session: pytest.Session, state: SessionState) -> None:
    """After pytest-benchmark has saved its JSON: save the compile cache, build the Run, make sure it is on disk,
    then gate, save the baseline and report, as asked. Each of those may fail; the message then says where the
    measurements are."""
    config = session.config
    if config.getoption("--vitcnn-compile-cache"):
        state.lines.append(compile_cache.save(config.getoption("--vitcnn-compile-cache"), state.device))
    if not state.records:
        return
    data = run_json(config)
    try:
        saved_at = json_on_disk(config, data)
    except OSError as exc:
        saved_at = None
        state.lines.append(f"vitcnn: could NOT write this run's JSON: {exc}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    state.run = parse_run(data, str(saved_at or "this pytest session"))
    if saved_at is not None:
        state.lines.append(f"vitcnn: this run's measurements are in {saved_at}")
    if finish_run(config, state.run, state.lines, saved_at):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
