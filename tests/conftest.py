"""Session fixtures: one real smoke run and one real gate baseline, shared by every test that needs them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pytest_runs import GATE_SUBSET, run_benchmarks

# The gate's end-to-end runs use one torch thread. With two OpenMP threads on the 2-core VM, a thread that another
# process preempts stalls its partner at every barrier, so a short burst of load slows a run by an unbounded
# factor; one thread under the kernel's fair scheduler keeps at least 2/(T+1) of a core against T busy threads
# of other processes, a slowdown of at most (T+1)/2.
GATE_THREADS = ("--vitcnn-threads", "1")

# Markers whose skips must not pass quietly, e.g. VITCNN_REQUIRE_MARKERS=valgrind,browser: CI sets it where it has
# installed the tools those tests need (ci.yml), so a missing tool fails the run there instead of skipping.
REQUIRE_MARKERS = "VITCNN_REQUIRE_MARKERS"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A skipped test carrying a required marker is reported as a failure that gives the skip's reason."""
    report = (yield).get_result()
    required = {m.strip() for m in os.environ.get(REQUIRE_MARKERS, "").split(",") if m.strip()}
    if not report.skipped or hasattr(report, "wasxfail") or not required:
        return
    marks = sorted({m.name for m in item.iter_markers()} & required)
    if marks:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but {REQUIRE_MARKERS} requires the {', '.join(marks)} tests to run: {reason}"


@dataclass
class RealRun:
    json_path: Path
    output: str
    returncode: int

    @property
    def data(self) -> dict:
        return json.loads(self.json_path.read_text())


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> RealRun:
    """`pytest benchmarks --benchmark-only --vitcnn-profile smoke --benchmark-json out.json`, run for real (with a
    shorter timing budget than the default: these tests check what is recorded, not how fast it is)."""
    path = tmp_path_factory.mktemp("smoke") / "out.json"
    done = run_benchmarks("--vitcnn-profile", "smoke", "--benchmark-json", str(path),
                          "--vitcnn-target-seconds", "0.2", "--vitcnn-warmup-seconds", "0.2")
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    return RealRun(path, done.stdout, done.returncode)


@pytest.fixture(scope="session")
def gate_baseline(tmp_path_factory) -> tuple[Path, RealRun]:
    """A baseline directory holding three real runs of GATE_SUBSET (GATE_THREADS), and the last run."""
    directory = tmp_path_factory.mktemp("baselines")
    # Saved three times: the gate judges speed against the spread between saved runs (stored.MIN_RUNS).
    for name in ("run_0.json", "run_1.json", "run_a.json"):
        path = directory / name
        done = run_benchmarks(*GATE_SUBSET, *GATE_THREADS, "--benchmark-json", str(path),
                              "--vitcnn-save-baseline", "--vitcnn-baseline-dir", str(directory))
        assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    return directory, RealRun(path, done.stdout, done.returncode)
