"""`vitcnn history run` (vitcnn/history/backfill.py) on a small git repository made here: which commits are listed,
and what happens to a commit that predates the layout, refuses an option, collects nothing, dies, or runs. The
commits' "benchmarks" are a pytest-benchmark test of a no-op (one round) whose conftest turns the JSON into a
vitcnn run: no model is measured, each commit's pytest takes a second or two."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import S1, result, run_json
from vitcnn.history import backfill
from vitcnn.history.backfill import SCHEDULER_VARIABLES, BackfillError, commits, measure_commit
from vitcnn.history.store import HistoryStore

BENCH = """\
def test_noop(benchmark):
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
"""

# Makes pytest-benchmark's JSON a vitcnn run (the template's vitcnn parts, the commit pytest-benchmark read), and
# records what the commit's pytest saw: the scheduler variables, the compile caches, which vitcnn it imported.
CONFTEST = """\
import json
import os
import pathlib

import vitcnn

SEEN = {seen!r}


def pytest_benchmark_update_json(config, benchmarks, output_json):
    template = json.loads(pathlib.Path(__file__).with_name("run_template.json").read_text())
    output_json["machine_info"].update(template["machine_info"])
    output_json["benchmarks"] = template["benchmarks"]
    output_json["vitcnn"] = template["vitcnn"]
    output_json["seen"] = {{"env": {{k: os.environ.get(k) for k in SEEN}}, "vitcnn": vitcnn.__file__}}
"""

# Dies at the end of the session, before pytest-benchmark writes the run, after saying something in the log.
CRASH = """\
import os

import pytest


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # around pytest-benchmark's own wrapper, which writes the run
def pytest_sessionfinish(session):
    writer = session.config.get_terminal_writer()
    writer.line("the commit's own words before it died")
    writer.flush()
    os._exit(3)
    yield
"""

# Writes its run, then the process dies with an exit status pytest never gives: a run that failed after starting.
DIES_AFTER_WRITING = """\
import os


def pytest_unconfigure(config):
    os._exit(3)
"""


def git(repo: Path, *args: str, when: int = 0) -> str:
    """git with a fixed identity, its commits dated `when` hours past a fixed time."""
    stamp = f"2026-01-01T{when:02d}:00:00+00:00"
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip()


def commit(repo: Path, message: str, files: dict[str, str | None], when: int) -> str:
    """Write (or with None delete) `files` and commit them; the commit id."""
    for name, text in files.items():
        path = repo / name
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message, when=when)
    return git(repo, "rev-parse", "HEAD")


SEEN = (*SCHEDULER_VARIABLES, "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> dict[str, object]:
    """A project's history, oldest first: before the suite existed; the suite; a merged side branch; a commit
    whose benchmarks/ collects nothing; one whose run dies before writing its file; one whose run dies after; one
    writing a plain pytest-benchmark file; the suite again."""
    root = tmp_path_factory.mktemp("project")
    git(root, "init", "-q", "-b", "main")
    ids: dict[str, object] = {"root": root}
    ids["bare"] = commit(root, "a README, nothing to measure", {"README.md": "hello\n"}, 0)
    suite = {"vitcnn/__init__.py": "", "vitcnn/plugin.py": "", "benchmarks/test_bench.py": BENCH,
             "conftest.py": CONFTEST.format(seen=SEEN), "run_template.json": json.dumps(run_json([result(S1)]))}
    ids["suite"] = commit(root, "the suite", suite, 1)
    git(root, "checkout", "-q", "-b", "side")
    ids["side"] = [commit(root, f"side {i}", {f"side{i}.txt": "x"}, 2 + i) for i in range(2)]
    git(root, "checkout", "-q", "main")
    git(root, "merge", "-q", "--no-ff", "-m", "merge side", "side", when=4)
    ids["merge"] = git(root, "rev-parse", "HEAD")
    ids["nothing"] = commit(root, "no benchmark left", {"benchmarks/test_bench.py": None,
                                                        "benchmarks/README.txt": "soon\n"}, 5)
    ids["crash"] = commit(root, "a run that dies", {"benchmarks/README.txt": None, "benchmarks/test_bench.py": BENCH,
                                                    "benchmarks/conftest.py": CRASH}, 6)
    ids["dies_after"] = commit(root, "a run that dies after writing", {"benchmarks/conftest.py": DIES_AFTER_WRITING},
                               7)
    ids["plain"] = commit(root, "plain pytest-benchmark", {"benchmarks/conftest.py": None,
                                                           "conftest.py": "", "run_template.json": None}, 8)
    ids["good"] = commit(root, "the suite again", suite, 9)
    return ids


def worktrees(root: Path) -> int:
    return git(root, "worktree", "list", "--porcelain").count("worktree ")


# ------------------------------------------------------------------------------------------------ the commits


def test_a_range_is_the_first_parent_line_oldest_first(repo):
    line = [repo["suite"], repo["merge"], repo["nothing"], repo["crash"], repo["dies_after"], repo["plain"],
            repo["good"]]
    assert commits(f"{repo['bare']}..main", repo=repo["root"]) == line  # the side branch's commits are not listed
    assert commits(f"{repo['bare']}..main", every=2, repo=repo["root"]) == line[::-1][::2][::-1]
    assert commits(f"{repo['bare']}..main", every=3, repo=repo["root"]) == [repo["suite"], repo["crash"],
                                                                             repo["good"]]
    assert commits(f"{repo['bare']}..main", every=100, repo=repo["root"]) == [repo["good"]]  # the newest, always
    assert commits("main~1", repo=repo["root"]) == [repo["plain"]]


@pytest.mark.parametrize("spec, every, message", [
    ("nosuchref..main", 1, "git cannot list"),
    ("main..main", 1, "names no commits"),
    ("nosuchref", 1, "git cannot list"),
    ("main~1..main", 0, "at least 1"),
])
def test_a_range_git_cannot_list_is_a_backfill_error(repo, spec, every, message):
    with pytest.raises(BackfillError, match=message):
        commits(spec, every, repo=repo["root"])


# ---------------------------------------------------------------------------------------- what each commit gives


def measure(repo, name: str, tmp_path: Path, args: tuple[str, ...] = (), **options) -> backfill.Measured:
    done = measure_commit(repo[name], tmp_path, list(args), repo=repo["root"], python=sys.executable, **options)
    assert worktrees(repo["root"]) == 1  # the temporary worktree is gone
    return done


def test_a_commit_before_the_suite_is_skipped(repo, tmp_path):
    done = measure(repo, "bare", tmp_path)
    assert (done.outcome, done.reason) == ("skipped", "predates the suite's layout: no benchmarks")
    assert list(tmp_path.iterdir()) == []  # no pytest was run


def test_a_commit_whose_pytest_refuses_an_option_is_skipped_with_pytests_words(repo, tmp_path):
    done = measure(repo, "suite", tmp_path, ("--vitcnn-option-from-the-future=1",))
    assert done.outcome == "skipped" and done.run_file is None
    assert done.reason.startswith("its pytest refused the options: ")
    assert "error: unrecognized arguments: --vitcnn-option-from-the-future=1" in done.reason
    assert not list(tmp_path.glob("*.json"))


def test_a_commit_that_collects_nothing_is_skipped(repo, tmp_path):
    done = measure(repo, "nothing", tmp_path)
    assert done.outcome == "skipped" and done.reason.startswith("it collects no benchmark")
    assert not list(tmp_path.glob("*.json"))  # the empty file pytest-benchmark opened is removed


def test_a_commit_that_dies_without_a_run_file_failed_with_its_log_tail(repo, tmp_path):
    done = measure(repo, "crash", tmp_path)
    assert done.outcome == "failed" and done.run_file is None
    assert done.reason.startswith("pytest exit 3, no run file;")
    assert "the commit's own words before it died" in done.reason
    assert (tmp_path / f"{repo['crash']}.log").is_file()


def test_a_commit_runs_its_own_code_without_the_schedulers_variables(repo, tmp_path, monkeypatch):
    """A backfill started inside a Slurm array task or an indexed Job must measure the whole selection, not the
    task's shard; the commit's pytest imports the commit's vitcnn; compiles go to empty caches of its own."""
    for name in SCHEDULER_VARIABLES:
        monkeypatch.setenv(name, "3")
    done = measure(repo, "suite", tmp_path)
    assert done.outcome == "measured" and done.reason is None
    assert done.run_file == tmp_path / f"{repo['suite']}.json"
    seen = json.loads(done.run_file.read_text())["seen"]
    assert {k: seen["env"][k] for k in SCHEDULER_VARIABLES} == dict.fromkeys(SCHEDULER_VARIABLES)
    assert seen["vitcnn"].endswith("/checkout/vitcnn/__init__.py") and not seen["vitcnn"].startswith(
        str(Path(backfill.__file__).parents[2]))
    assert "inductor-cache" in seen["env"]["TORCHINDUCTOR_CACHE_DIR"]
    assert "triton-cache" in seen["env"]["TRITON_CACHE_DIR"]
    # measured again: a second file beside the first, never over it
    again = measure(repo, "suite", tmp_path, warm_cache=True)
    assert again.run_file == tmp_path / f"{repo['suite']}-2.json"
    assert json.loads(again.run_file.read_text())["seen"]["env"]["TORCHINDUCTOR_CACHE_DIR"] == os.environ.get(
        "TORCHINDUCTOR_CACHE_DIR")


# ------------------------------------------------------------------------------------------- the whole backfill


def test_backfill_measures_adds_and_reports_each_commit(repo, tmp_path):
    store = HistoryStore(tmp_path / "store", create=True)
    lines: list[str] = []
    done = backfill.backfill(store, f"{repo['bare']}..main", tmp_path / "out", [], every=1, repo=repo["root"],
                             python=sys.executable, report=lines.append)
    outcomes = {m.commit: m for m in done}
    assert [m.commit for m in done] == commits(f"{repo['bare']}..main", repo=repo["root"])
    assert {name: outcomes[repo[name]].outcome for name in ("suite", "merge", "nothing", "crash", "dies_after",
                                                            "plain", "good")} == {
        "suite": "measured", "merge": "measured", "nothing": "skipped", "crash": "failed", "dies_after": "failed",
        "plain": "failed", "good": "measured"}
    # a run that died after writing its file is failed, and what it wrote is still stored
    assert outcomes[repo["dies_after"]].reason.startswith("pytest exit 3;")
    # a plain pytest-benchmark file is not a vitcnn run: failed with the store's reason
    assert "no vitcnn section" in outcomes[repo["plain"]].reason
    stored = {e.commit for e in HistoryStore(tmp_path / "store").entries}
    assert stored == {repo["suite"], repo["merge"], repo["dies_after"], repo["good"]}
    assert len(lines) == len(done) and lines[0].startswith(f"[1] {repo['suite'][:10]} measured")
    # a nightly job: a commit the store holds is not measured again
    again = backfill.backfill(store, f"{repo['plain']}..main", tmp_path / "out", [], repo=repo["root"],
                              python=sys.executable, report=lines.append, skip_stored="")
    assert [(m.commit, m.outcome, m.reason) for m in again] == [(repo["good"], "skipped", "already in the store")]


# ------------------------------------------------------------------------------------------ --metric instructions


def stored_run(tmp_path: Path, commit_id: str, name: str, **extra) -> Path:
    """A one-setting run of `commit_id` (S1), with `extra` in its extra_info."""
    data = run_json([result(S1, **extra)])
    data["commit_info"] = {"id": commit_id, "time": "2026-01-01T09:00:00+00:00", "dirty": False}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def test_counting_backfills_pass_the_plugins_option_and_skip_only_commits_stored_with_counts(repo, tmp_path,
                                                                                              monkeypatch):
    """`history run --metric instructions`: each commit's pytest counts (--vitcnn-metric instructions, before the
    options given), and with --skip-stored a commit whose stored run was only timed is measured again: its counts
    are what is missing."""
    monkeypatch.setattr(backfill.instructions, "unavailable_reason", lambda: None)
    asked = []
    monkeypatch.setattr(backfill, "measure_commit", lambda commit, out_dir, args, *rest: asked.append(
        (commit, args)) or backfill.Measured(commit, "skipped", "not measured here"))
    store = HistoryStore(tmp_path / "store", create=True)
    store.add([stored_run(tmp_path, repo["plain"], "timed"),
               stored_run(tmp_path, repo["good"], "counted", instructions_per_call=1.5e9)])
    done = backfill.backfill(store, f"{repo['dies_after']}..main", tmp_path / "out", ["-k", "x"],
                             repo=repo["root"], report=lambda line: None, skip_stored="", metric="instructions")
    assert asked == [(repo["plain"], ["--vitcnn-metric=instructions", "-k", "x"])]
    assert [(m.commit, m.reason) for m in done] == [(repo["plain"], "not measured here"),
                                                    (repo["good"], "already in the store")]
    asked.clear()
    backfill.backfill(store, f"{repo['dies_after']}..main", tmp_path / "out", [], repo=repo["root"],
                      report=lambda line: None, skip_stored="")  # timing: both are stored
    assert asked == []


def test_a_counting_backfill_without_valgrind_is_refused_before_any_commit(repo, tmp_path, monkeypatch):
    monkeypatch.setattr(backfill.instructions, "unavailable_reason", lambda: "valgrind not found: install it")
    store = HistoryStore(tmp_path / "store", create=True)
    with pytest.raises(BackfillError, match="--metric instructions: valgrind not found"):
        backfill.backfill(store, f"{repo['bare']}..main", tmp_path / "out", [], repo=repo["root"],
                          metric="instructions")
    with pytest.raises(BackfillError, match="--metric must be one of time, instructions"):
        backfill.backfill(store, f"{repo['bare']}..main", tmp_path / "out", [], repo=repo["root"], metric="flops")
    assert worktrees(repo["root"]) == 1 and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ a commit from before options.py


OLD_PLUGIN = """\
def pytest_addoption(parser):
    parser.getgroup("vitcnn").addoption("--vitcnn-profile", default=None)
"""


def _options_entry_point() -> bool:
    from importlib.metadata import entry_points

    return any(ep.value == "vitcnn.options" for ep in entry_points(group="pytest11"))


@pytest.mark.skipif(not _options_entry_point(), reason="vitcnn is not installed with its pytest11 entry point")
def test_a_commit_from_before_the_options_module_runs_with_its_own_options(tmp_path):
    """Before c4cbe07 the plugin registered its options itself and there was no vitcnn/options.py (the real
    c4cbe07~1 fails the same way: ValueError: option names {'--vitcnn-profile'} already added)."""
    root = tmp_path / "old"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    sha = commit(root, "the plugin registers its own options", {
        "vitcnn/__init__.py": "", "vitcnn/plugin.py": OLD_PLUGIN, "benchmarks/test_bench.py": BENCH,
        "conftest.py": 'pytest_plugins = ["vitcnn.plugin"]\n' + CONFTEST.format(seen=SEEN),
        "run_template.json": json.dumps(run_json([result(S1)]))}, 0)
    done = measure_commit(sha, tmp_path, ["--vitcnn-profile=smoke"], repo=root, python=sys.executable)
    assert done.outcome == "measured", done.reason
