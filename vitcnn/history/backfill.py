"""`vitcnn history run`: measure past commits, as `asv run` does, and add each run to a history store.

Each commit is checked out in a temporary git worktree (`vitcnn ab`'s Checkout), where that commit's own plugin
and benchmarks run: `python -m pytest benchmarks --benchmark-only --benchmark-json F` plus the options given, with
PYTHONPATH at the worktree so its `vitcnn` is the one measured. A commit that cannot run what was asked is skipped
with the reason: it has no benchmarks/ or plugin yet, or its pytest refuses the options (exit 4: an option or
profile it predates) or collects nothing (exit 5). A commit whose run fails after starting is reported as failed,
with its log's tail; what its run file holds (settings measured before the failure) is still added.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vitcnn.history.series import METRICS
from vitcnn.history.store import HistoryStore
from vitcnn.measure import instructions
from vitcnn.options import METRICS as PLUGIN_METRICS
from vitcnn.runfile import Run
from vitcnn.workers import SideError
from vitcnn.workers.checkout import PROJECT_ROOT, Checkout

# Variables that would make a backfilled pytest run one shard of somebody's scheduler job instead of the whole
# selection (vitcnn/scale/shard.py reads them).
SCHEDULER_VARIABLES = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
                       "SLURM_ARRAY_TASK_STEP", "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX",
                       "VITCNN_SHARD_COUNT")
USAGE_ERROR, NO_TESTS = 4, 5  # pytest's exit codes
COUNTED = PLUGIN_METRICS[1]  # --vitcnn-metric instructions


class BackfillError(ValueError):
    """A commit range git cannot list, or a metric this machine cannot measure."""


@dataclass(frozen=True)
class Measured:
    """What happened to one commit: "measured", "skipped" (with the reason) or "failed" (with the log's tail)."""

    commit: str
    outcome: str
    reason: str | None = None
    run_file: Path | None = None
    seconds: float = 0.0


def commits(spec: str, every: int = 1, repo: Path = PROJECT_ROOT) -> list[str]:
    """The commits of `spec`, oldest first: `A..B` is B's first-parent line after A (what was on the branch, not
    the merged branches' inner commits); a single ref is that commit. `every` keeps every Nth, counted back from
    the newest so the newest is always measured."""
    if every < 1:
        raise BackfillError(f"--every must be at least 1, got {every}")
    args = ["rev-list", "--first-parent", "--reverse", spec] if ".." in spec else ["rev-parse", "--verify",
                                                                                    f"{spec}^{{commit}}"]
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise BackfillError(f"git cannot list {spec!r}: {done.stderr.strip()}")
    listed = done.stdout.split()
    if not listed:
        raise BackfillError(f"{spec!r} names no commits")
    return listed[::-1][::every][::-1]


def measure_commit(commit: str, out_dir: Path, pytest_args: list[str], repo: Path = PROJECT_ROOT,
                   python: str = sys.executable, warm_cache: bool = False) -> Measured:
    """Run the benchmarks of `commit` in a worktree; its run file is written to OUT_DIR/<commit>.json (an existing
    one is never replaced: that commit is then measured into a numbered file beside it).

    Unless `warm_cache`, the commit compiles into empty inductor and Triton caches of its own (removed with the
    worktree): every commit's compile time is then a cold compile, and no commit can be served kernels that an
    earlier one left behind. With `warm_cache` the machine's caches are used, as a plain run would."""
    start = time.monotonic()
    try:
        checkout = Checkout(commit, repo, needs_worker=False)
    except SideError as exc:
        return Measured(commit, "skipped", str(exc))
    try:
        root = checkout.root
        for needed in ("benchmarks", "vitcnn/plugin.py"):
            if not (root / needed).exists():
                return Measured(commit, "skipped", f"predates the suite's layout: no {needed}")
        run_file = _free_path(out_dir, commit)
        env = {k: v for k, v in os.environ.items() if k not in SCHEDULER_VARIABLES}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
        # Only the commit's own plugins: the installed vitcnn's pytest11 entry point would import today's
        # vitcnn/options.py into a commit that has none (before c4cbe07) and clash with its plugin's options. The
        # commit's conftest.py loads its own plugin; pytest-benchmark is loaded by name.
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        if not warm_cache:
            env["TORCHINDUCTOR_CACHE_DIR"] = str(checkout.temp / "inductor-cache")
            env["TRITON_CACHE_DIR"] = str(checkout.temp / "triton-cache")
        log = out_dir / f"{run_file.stem}.log"
        command = [python, "-m", "pytest", "-p", "pytest_benchmark.plugin", "benchmarks", "--benchmark-only",
                   f"--benchmark-json={run_file}", *pytest_args]
        with open(log, "w") as log_file:
            rc = subprocess.run(command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT).returncode
        seconds = time.monotonic() - start
        wrote = run_file.exists() and run_file.stat().st_size > 0  # older pytest-benchmarks open it at the start
        if not wrote:
            run_file.unlink(missing_ok=True)
        if rc in (USAGE_ERROR, NO_TESTS) and not wrote:
            why = "its pytest refused the options" if rc == USAGE_ERROR else "it collects no benchmark"
            return Measured(commit, "skipped", f"{why}: {_last_error(log)}", seconds=seconds)
        if not wrote:
            return Measured(commit, "failed", f"pytest exit {rc}, no run file; {log}:\n{_tail(log)}",
                            seconds=seconds)
        failed = rc not in (0, 1)  # 1: a setting failed or a gate said regression; the run file says which
        return Measured(commit, "failed" if failed else "measured",
                        f"pytest exit {rc}; {log}:\n{_tail(log)}" if failed else None, run_file, seconds)
    finally:
        checkout.close()


def backfill(store: HistoryStore, spec: str, out_dir: Path, pytest_args: list[str], every: int = 1,
             repo: Path = PROJECT_ROOT, python: str = sys.executable, report=print,
             skip_stored: str | None = None, warm_cache: bool = False, metric: str = PLUGIN_METRICS[0]
             ) -> list[Measured]:
    """Measure each commit of `spec` in turn and add its run to `store` at once (an interrupted backfill keeps
    what it measured). `report` is told about each commit as it finishes. With `skip_stored` (a profile name, or
    "" for any), a commit the store already holds a run of, of that profile, is skipped (a nightly job measures
    only what is new). `metric` "instructions" has each commit's pytest count instructions as well
    (--vitcnn-metric instructions): deterministic series that confirm a timed change point (confirm.py); then
    only a stored run with counts makes a commit stored, and a machine without valgrind is refused before any
    commit is checked out."""
    if metric not in PLUGIN_METRICS:
        raise BackfillError(f"--metric must be one of {', '.join(PLUGIN_METRICS)}, got {metric!r}")
    counting = metric == COUNTED
    if counting:
        why_not = instructions.unavailable_reason()
        if why_not:
            raise BackfillError(f"--metric {COUNTED}: {why_not}")
        pytest_args = [f"--vitcnn-metric={COUNTED}", *pytest_args]
    out_dir.mkdir(parents=True, exist_ok=True)
    stored = {e.commit for e in store.entries if (skip_stored == "" or e.profile == skip_stored)
              and (not counting or _counted(store.load(e)))} if skip_stored is not None else set()
    done = []
    for number, commit in enumerate(commits(spec, every, repo), 1):
        if skip_stored is not None and commit in stored:
            measured = Measured(commit, "skipped", "already in the store")
        else:
            measured = measure_commit(commit, out_dir, pytest_args, repo, python, warm_cache)
        if measured.run_file is not None:
            added = store.add([measured.run_file])[0]
            if added.outcome == "refused":
                measured = Measured(commit, "failed", added.reason, measured.run_file, measured.seconds)
        done.append(measured)
        report(f"[{number}] {commit[:10]} {measured.outcome} ({measured.seconds:.0f} s)"
               + (f": {measured.reason}" if measured.reason else ""))
    return done


def _counted(run: Run) -> bool:
    """Whether a stored run counted instructions of some setting."""
    return any(METRICS[COUNTED].read(r) for r in run.results.values() if r.status == "ok")


def _free_path(out_dir: Path, commit: str) -> Path:
    path, n = out_dir / f"{commit}.json", 1
    while path.exists():
        n += 1
        path = out_dir / f"{commit}-{n}.json"
    return path


def _tail(path: Path, lines: int = 12) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _last_error(path: Path) -> str:
    """pytest's own words for a usage error (the 'error: ...' line), else the log's last line."""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["(empty log)"])[-1]


def temporary_out_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="vitcnn-history-"))
