"""The GitHub Actions workflows (.github/workflows/) read as data: what a reviewer would check by eye, and what
regressed before (deprecated action majors, a folder nobody creates, a write token next to a fork's code, tests that
skip quietly in CI). Nothing here runs a workflow; actionlint checks their syntax.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from vitcnn.report import pr_comment

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
CONSTRAINTS = "baselines/gpu-constraints.txt"

# The current major of every action of actions/ this project uses (all run on Node 24; the Node 20 ones are
# deprecated). A new action, or a bump, is one line here.
CURRENT_MAJOR = {  # the newest majors in December 2026, all on Node 24 (upload v7 and download v8 are a pair)
    "actions/checkout": 7,
    "actions/setup-python": 7,
    "actions/upload-artifact": 7,
    "actions/download-artifact": 8,
    "actions/cache": 6,
}
# The gating jobs that hand a section to the pull request's comment: workflow, job, section, the job's Markdown.
SECTION_JOBS = [("ab.yml", "ab", "ab", "ab.md"), ("ab.yml", "instructions", "instructions", "instructions.md"),
                ("benchmark.yml", "gate", "gpu", "gate.md")]


def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(workflow: dict) -> dict:
    """The `on:` block as a dict (PyYAML reads the key `on` as True)."""
    on = workflow.get("on", workflow.get(True))
    return {on: None} if isinstance(on, str) else {k: None for k in on} if isinstance(on, list) else on


def steps(workflow: dict):
    """(job id, step) of every step of every job."""
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def scripts(workflow: dict, job: str | None = None) -> list[str]:
    """The run scripts, backslash-continued lines joined."""
    return [step["run"].replace("\\\n", " ") for job_id, step in steps(workflow)
            if "run" in step and job in (None, job_id)]


ALL = sorted(p.name for p in WORKFLOWS.glob("*.yml"))


def test_the_workflows_are_the_ones_these_tests_know():
    assert ALL == ["ab.yml", "benchmark.yml", "ci.yml", "history.yml", "pr-comment.yml", "sweep.yml"]


@pytest.mark.parametrize("name", ALL)
def test_every_action_of_actions_is_at_its_current_major(name: str):
    for job_id, step in steps(load(name)):
        uses = step.get("uses", "")
        if not uses.startswith("actions/"):
            continue
        action, _, ref = uses.partition("@")
        repo = "/".join(action.split("/")[:2])  # actions/cache/restore is the actions/cache repository
        assert repo in CURRENT_MAJOR, f"{name} {job_id}: {uses}: add its current major to CURRENT_MAJOR"
        assert ref == f"v{CURRENT_MAJOR[repo]}", f"{name} {job_id}: {uses}, not v{CURRENT_MAJOR[repo]}"


# Expressions that differ between refs or pull requests. In a workflow_run workflow github.ref is the default
# branch, the same for every pull request, so there it does not count.
PER_REF = ("github.ref", "github.head_ref", "github.event.pull_request.number", "github.event.workflow_run.head_branch")


@pytest.mark.parametrize("name", ALL)
def test_no_concurrency_group_is_shared_across_refs(name: str):
    workflow = load(name)
    per_ref = [e for e in PER_REF if not (e == "github.ref" and "workflow_run" in triggers(workflow))]
    for where, block in [("workflow", workflow.get("concurrency")),
                         *((job_id, job.get("concurrency")) for job_id, job in workflow["jobs"].items())]:
        if block is None:
            continue
        group = block if isinstance(block, str) else block["group"]
        expressions = re.findall(r"\$\{\{(.*?)\}\}", group)
        assert any(e in x for x in expressions for e in per_ref), f"{name} {where}: group {group!r} is shared by refs"


@pytest.mark.parametrize("name", ALL)
def test_pull_request_workflows_only_read(name: str):
    """A pull request's workflow runs its code, a fork's too: its token must not write (the comment is written by
    pr-comment.yml instead). pull_request_target, which would hand that code a write token, is not used at all."""
    workflow = load(name)
    on = triggers(workflow)
    assert "pull_request_target" not in on
    if "pull_request" not in on:
        return
    blocks = [workflow.get("permissions")] + [job.get("permissions") for job in workflow["jobs"].values()]
    assert blocks[0] is not None, f"{name}: no permissions block, so the repository's default (maybe write) applies"
    for block in filter(None, blocks):
        scopes = {"all": block} if isinstance(block, str) else block
        assert all(v in ("read", "none", "read-all", {}) for v in scopes.values()), f"{name}: {block}"


@pytest.mark.parametrize("name", ALL)
def test_no_run_script_expands_event_text_into_the_shell(name: str):
    """Branch names, titles and inputs are someone else's text: a script reads them from env, never from ${{ }}."""
    for script in scripts(load(name)):
        assert not re.search(r"\$\{\{\s*(github\.event|github\.head_ref|inputs)", script), script


def test_the_comment_workflow_never_runs_the_pull_requests_code():
    workflow = load("pr-comment.yml")
    assert triggers(workflow) == {"workflow_run": {"workflows": ["ab", "benchmark"], "types": ["completed"]}}
    assert workflow["permissions"] == {"pull-requests": "write", "actions": "read"}
    (job,) = workflow["jobs"].values()
    assert "permissions" not in job and job["if"] == "github.event.workflow_run.event == 'pull_request'"
    for _, step in steps(workflow):
        uses = step.get("uses", "")
        if uses.startswith("actions/checkout"):  # the default branch, and no token left in .git/config
            assert not {"ref", "repository"} & set(step.get("with", {})), step
            assert step["with"]["persist-credentials"] is False
        if uses.startswith("actions/download-artifact"):
            assert step["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
            assert step["with"]["github-token"] == "${{ github.token }}"
            assert step["with"]["pattern"] == "pr-comment-*"
    for script in scripts(workflow):
        assert not re.search(r"pip3?\s+install|setup\.py|\bmake\b|\bpytest\b|\bbash\s+\S+\.sh", script), script
        for call in re.findall(r"python3?\s+(?:-\S+\s+)*\S+", script):
            assert call.endswith("-m vitcnn.report.pr_comment"), f"runs something but the merge: {call}"
    (merge,) = [step for _, step in steps(workflow) if "gh api" in step.get("run", "")]
    assert merge["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
    assert merge["env"]["GH_TOKEN"] == "${{ github.token }}"
    run = merge["run"]
    assert '[[ "$pr" =~ ^[1-9][0-9]{0,9}$ ]]' in run  # the number is an integer ...
    assert 'gh api "repos/$REPO/pulls/$pr" --jq .head.sha' in run and '"$head" != "$HEAD_SHA"' in run  # ... current
    assert '"github-actions[bot]"' in run and pr_comment.COMMENT_MARKER in run  # only our own comment is edited
    assert "--method PATCH" in run and "--method POST" in run


@pytest.mark.parametrize("name, job, section, markdown", SECTION_JOBS)
def test_each_gating_job_uploads_its_section_of_the_comment(name: str, job: str, section: str, markdown: str):
    """The section, the pull request's number and its head go up even when the job failed (if: always()), so the
    comment can say that there is no table; the names match what pr-comment.yml and pr_comment.py expect."""
    workflow = load(name)
    assert section in pr_comment.SECTIONS
    assert workflow["name"] in triggers(load("pr-comment.yml"))["workflow_run"]["workflows"]
    job_steps = workflow["jobs"][job]["steps"]
    (upload,) = [s for s in job_steps if s.get("with", {}).get("name") == f"pr-comment-{section}"]
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["if"] == "always()"
    folder = upload["with"]["path"].rstrip("/")
    (write,) = [s for s in job_steps if f"{folder}/pr-number" in s.get("run", "")]
    assert write["if"] == "always()"
    assert write["env"].items() >= {"PR_NUMBER": "${{ github.event.pull_request.number }}",
                                    "HEAD_SHA": "${{ github.event.pull_request.head.sha }}"}.items()
    for line in (f'echo "$PR_NUMBER" > {folder}/pr-number', f'echo "$HEAD_SHA" > {folder}/head-sha',
                 f"[ -f {markdown} ]; then cp {markdown} {folder}/section.md"):
        assert line in write["run"]
    writes = rf"--(?:vitcnn-gate-)?markdown[= ]{re.escape(markdown)}(?!\S)"
    assert any(re.search(writes, script) for script in scripts(workflow, job)), f"{job} never writes {markdown}"
    pr_comment_run = "".join(scripts(load("pr-comment.yml")))
    for file in ("pr-number", "head-sha", "measured-sha", "section.md"):
        assert file in pr_comment_run


def test_benchmark_installs_the_pinned_gpu_stack():
    installs = [line for script in scripts(load("benchmark.yml")) for line in script.splitlines()
                if re.search(r"pip install .*-e ", line)]
    assert len(installs) == 2  # the gate and the baseline
    assert all(f"-c {CONSTRAINTS} " in line for line in installs), installs


def pins() -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in (REPO / CONSTRAINTS).read_text().splitlines()]
    found = {}
    for line in filter(None, lines):
        name, op, version = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(==|[<>=!~]=?|===)\s*(\S+)", line).groups()
        assert op == "==", f"{line}: pin exactly, or the slug can change without this file changing"
        found[canonicalize_name(name)] = version
    return found


def test_the_gpu_constraints_pin_the_stack_within_pyprojects_ranges():
    """The pins must be installable with the project (pip fails on a constraint outside a requirement), and be the
    stack ci.yml's torch-2.11 job tests on CPU, so the GPU runner runs a stack the tests have seen."""
    found = pins()
    assert found == {"torch": "2.11.0", "torchvision": "0.26.0", "timm": "1.0.29", "nvidia-ml-py": "13.580.82"}
    project = pyproject()["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    extras = project["optional-dependencies"]
    requirements += [Requirement(r) for extra in ("test", "plot", "gpu") for r in extras[extra]]
    checked = set()
    for req in requirements:
        name = canonicalize_name(req.name)
        if name in found:
            assert req.specifier.contains(found[name], prereleases=True), f"{name}=={found[name]} is outside {req}"
            checked.add(name)
    assert checked >= {"torch", "timm", "nvidia-ml-py"}
    matrix = load("ci.yml")["jobs"]["tests"]["strategy"]["matrix"]["include"]
    (stack,) = [s for s in matrix if s["stack"] == "torch-2.11"]
    tested = dict(r.split("==") for r in f"{stack['torch']} {stack['timm']}".split())
    assert tested == {k: found[k] for k in ("torch", "torchvision", "timm")}


def apt_packages(script: str) -> set[str]:
    """The packages an `apt-get install` line of a shell script names."""
    found = set()
    for line in script.replace("\\\n", " ").splitlines():
        match = re.search(r"apt-get install\s+(.*?)(?:[|>&;]|$)", line)
        if match:
            found |= {word for word in match[1].split() if not word.startswith("-")}
    return found


BROWSER_PACKAGES = {"chromium", "chromium-driver"}


def test_ci_installs_what_ci_run_installs():
    """.ci/run installs what the valgrind, slurm and browser tests need; ci.yml must too, except the browser, which
    ubuntu-latest has preinstalled (Google Chrome, Chromium, chromedriver on PATH), as ci.yml's header says."""
    wanted = apt_packages((REPO / ".ci" / "run").read_text())
    assert wanted >= {"valgrind", "slurm-wlm", "munge"} | BROWSER_PACKAGES
    installed = set().union(*map(apt_packages, scripts(load("ci.yml"), "tests")))
    assert wanted - installed <= BROWSER_PACKAGES
    if wanted - installed:
        header = (WORKFLOWS / "ci.yml").read_text().split("\nname:")[0]
        assert "preinstalled" in header and "google-chrome" in header and "chromedriver" in header
        browser_test = (REPO / "tests" / "site" / "test_browser.py").read_text()
        assert 'shutil.which("google-chrome")' in browser_test and 'shutil.which("chromedriver")' in browser_test


def test_ci_requires_the_tests_it_installs_for():
    """Each tool-dependent marker is required (VITCNN_REQUIRE_MARKERS) in the step that runs its tests; the slurm
    tests run as root in a step of their own, and the plain step leaves them out instead of skipping them."""
    steps_ = {s["name"]: s for s in load("ci.yml")["jobs"]["tests"]["steps"] if "run" in s}
    required = {name: s.get("env", {}).get("VITCNN_REQUIRE_MARKERS", "") for name, s in steps_.items()}
    plain = next(s for n, s in steps_.items() if required[n] == "valgrind,browser")
    root = next(s for n, s in steps_.items() if required[n] == "slurm")
    assert plain["run"] == 'pytest -m "not slurm"'
    assert root["run"].startswith('sudo -E env "PATH=$PATH" python -m pytest -m slurm ')
    assert root["if"] == "${{ !cancelled() }}"  # runs when the plain step failed too
    markers = pyproject()["tool"]["pytest"]["ini_options"]["markers"]
    declared = {m.split(":")[0] for m in markers}
    assert {"valgrind", "browser", "slurm"} <= declared


REQUIRED_SKIPS = '''
import pytest

@pytest.mark.valgrind
def test_required():
    pytest.skip("no valgrind here")

@pytest.mark.valgrind
@pytest.mark.skipif(True, reason="valgrind is not installed")
def test_required_by_skipif():
    pass

@pytest.mark.browser
def test_not_required():
    pytest.skip("no browser here")

@pytest.mark.valgrind
@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False

@pytest.mark.valgrind
def test_runs():
    pass
'''


@pytest.mark.parametrize("require, expected", [
    ("", {"passed": 1, "skipped": 3, "xfailed": 1}),
    # a skip in the test is a failure, one in its setup (skipif, a fixture's skip) an error; xfail stays xfail
    ("valgrind", {"failed": 1, "error": 1, "passed": 1, "skipped": 1, "xfailed": 1}),
])
def test_required_markers_turn_skips_into_failures(tmp_path: Path, require: str, expected: dict[str, int]):
    """The hook of tests/conftest.py, in a pytest of its own: only tests/conftest.py is loaded (no plugins, no
    torch), so it takes a fraction of a second."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    valgrind\n    browser\n")
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.conftest"]\n')
    (tmp_path / "test_skips.py").write_text(REQUIRED_SKIPS)
    env = {**os.environ, "PYTHONPATH": str(REPO), "VITCNN_REQUIRE_MARKERS": require,
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    summary = done.stdout.strip().splitlines()[-1]
    assert {word.rstrip("s") if word == "errors" else word: int(n)
            for n, word in re.findall(r"(\d+) (\w+)", summary)} == expected, done.stdout
    if require:
        assert "requires the valgrind tests to run: Skipped: no valgrind here" in done.stdout
        assert "requires the valgrind tests to run: Skipped: valgrind is not installed" in done.stdout


# The output options of the commands in the workflows (see test_every_output_folder_of_a_workflow_is_made).
FILE_OPTIONS = ("--json", "--markdown", "--benchmark-json", "--vitcnn-gate-markdown", "-o", "--output", "--out")
DIR_OPTIONS = ("--out-dir",)  # --out is a folder for some commands, a file for others: its parent is checked
# A command of the vitcnn CLI or of pytest, after shell keywords, sudo/env and variable assignments.
CREATING = re.compile(r"^(?:(?:if|then|else|!|sudo(?:\s+-\w+)*|env)\s+|\w+=\S+\s+|\"\w+=[^\"]*\"\s+)*"
                      r"(?:python3?\s+-m\s+vitcnn\s|python3?\s+-m\s+pytest\s|pytest\s)")
SEPARATORS = re.compile(r"&&|\|\||[;|]")
_NAMES = "|".join(re.escape(o) for o in sorted(FILE_OPTIONS + DIR_OPTIONS, key=len, reverse=True))
OPTION = re.compile(rf"(?<!\S)({_NAMES})(?:=|\s+)(\"[^\"]*\"|'[^']*'|[^\s;|&]+)")


def output_folders(script: str) -> list[tuple[str, str, bool]]:
    """(command, folder it writes into, whether something makes that folder) for each output option."""
    found = []
    for i, line in enumerate(script.splitlines()):
        for command in map(str.strip, SEPARATORS.split(line)):
            for option, value in OPTION.findall(command):
                path = value.strip("\"'")
                folder = path if option in DIR_OPTIONS else os.path.dirname(path)
                if folder in ("", ".") or folder.startswith("$"):
                    continue  # the working directory, or a file GitHub provides ($GITHUB_STEP_SUMMARY)
                made = bool(CREATING.match(command)) or any(
                    re.search(rf"mkdir -p .*(?<!\S){re.escape(folder)}(?!\S)", before)
                    for before in script.splitlines()[:i])
                found.append((command, folder, made))
    return found


@pytest.mark.parametrize("name", ALL)
def test_every_output_folder_of_a_workflow_is_made(name: str):
    """Every folder a run script writes an output into exists when the command runs, or the job fails at the end.

    A textual check: for each output option (--json, --markdown, --out, --out-dir, -o/--output, --benchmark-json,
    --vitcnn-gate-markdown) whose path has a folder, either the command is the vitcnn CLI or pytest, which create
    missing folders themselves (vitcnn/runfile.py write_output behind --json, --markdown and --vitcnn-gate-markdown;
    --out-dir, --out and -o in vitcnn/ab/driver.py, history/backfill.py, site/publish.py, report/__init__.py,
    scale/merge.py; --benchmark-json through vitcnn/options.py), or an earlier line of the same script runs
    `mkdir -p` on that folder. test_the_vitcnn_outputs_do_create_their_folders checks the first claim.
    """
    for script in scripts(load(name)):
        for command, folder, made in output_folders(script):
            assert made, f"{name}: nothing creates {folder}/ for: {command}"


def test_the_output_folder_check_sees_what_it_must():
    """The textual check itself: the vitcnn CLI and pytest create their folders; another tool needs a mkdir."""
    assert output_folders("python -m vitcnn ab --json a-out/x.json --out-dir b-out") == [
        ("python -m vitcnn ab --json a-out/x.json --out-dir b-out", "a-out", True),
        ("python -m vitcnn ab --json a-out/x.json --out-dir b-out", "b-out", True)]
    assert output_folders('pytest benchmarks --benchmark-json="r/s-$SHARD.json"')[0][1:] == ("r", True)
    assert output_folders("tool --markdown out/x.md")[0][1:] == ("out", False)
    assert output_folders("mkdir -p out\ntool --markdown out/x.md")[0][1:] == ("out", True)
    assert output_folders("python3 -m vitcnn.report.pr_comment --out x/y.md")[0][1:] == ("x", False)
    assert output_folders("python -m vitcnn report r.json --summary \"$GITHUB_STEP_SUMMARY\" --markdown x.md") == []
    assert output_folders("python -m vitcnn ab --json a/x.json && tool --markdown b/y.md") == [
        ("python -m vitcnn ab --json a/x.json", "a", True), ("tool --markdown b/y.md", "b", False)]
    assert output_folders('sudo -E env "PATH=$PATH" python -m pytest --benchmark-json r/x.json')[0][1:] == ("r", True)
    assert output_folders("if ! X=1 python3 -m vitcnn.report.pr_comment --out d/c.md; then")[0][1:] == ("d", False)


def test_the_vitcnn_outputs_do_create_their_folders(tmp_path: Path):
    """What the check above trusts, for the option the instructions job relies on (--json instructions-out/...)."""
    from vitcnn.runfile import write_output

    write_output(tmp_path / "instructions-out" / "deeper" / "counts.json", {"a": 1})
    write_output(tmp_path / "md" / "gate.md", "| a |")
    assert (tmp_path / "instructions-out" / "deeper" / "counts.json").is_file()
    assert (tmp_path / "md" / "gate.md").read_text() == "| a |"
