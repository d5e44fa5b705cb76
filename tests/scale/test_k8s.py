"""The Kubernetes example (examples/k8s/) as far as a machine without a cluster or a GPU allows.

- The manifests are checked against the official Kubernetes JSON schemas (the `kubernetes-validate` package, strict:
  unknown fields are errors), and the check is shown to catch a misspelled field and a wrong type.
- `submit.sh` runs against a stand-in `kubectl` that records what it is given and plays back Job conditions: the
  Jobs it creates are the manifests with only N, SWEEP and the pytest args filled in, and the merge Job is created
  only once the sweep Job has finished, completed or failed.
- Each pod of the sweep Job that `submit.sh` created is run here, one after another, as Kubernetes would start it:
  the container's command and args exactly as written, with Kubernetes' `$(VAR)` expansion from the container's
  environment (the manifest's env plus the JOB_COMPLETION_INDEX the Job controller adds), then the merge Job's pod.
  What a node would provide is stood in for: the image's checkout (workingDir) is this repository, its `python` is
  this interpreter, and each volume mount is a directory under a temporary claim (subPath/subPathExpr honoured), its
  mountPath replaced by that directory in the command. The selection is a few tiny eager CPU settings.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.pytest_runs import REPO, SHARD_VARIABLES
from vitcnn.runfile import load_run

yaml = pytest.importorskip("yaml", reason="PyYAML reads the manifests (it comes with kubernetes-validate)")

K8S = REPO / "examples" / "k8s"
KUBERNETES_VERSION = "1.37"  # the newest schemas kubernetes-validate 1.37 bundles
SHARDS = 3
SWEEP = "tiny-cpu"
TINY = ("--vitcnn-models", "vit_t16,convnext_atto,nfnet_tiny", "--vitcnn-res", "64", "--vitcnn-batch", "1",
        "--vitcnn-compile", "eager", "--vitcnn-target-seconds", "0.05", "--vitcnn-warmup-seconds", "0.05",
        "--vitcnn-threads", "1", "--vitcnn-compile-times", "off", "--vitcnn-eager-twin", "off")
TINY_IDS = {"vit_t16-64px-bs1-fp32-auto-eager", "convnext_atto-64px-bs1-fp32-nchw-eager",
            "nfnet_tiny-64px-bs1-fp32-nchw-eager"}


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _only(path: Path) -> dict:
    (doc,) = _documents(path)
    return doc


def _container(job: dict) -> dict:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


def _env(container: dict) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", [])}


# ------------------------------------------------------------------------------------------ what Kubernetes does

def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion of command, args, env values and subPathExpr: `$(NAME)` becomes NAME's value when NAME
    is defined and stays as written otherwise, and `$$` is a literal `$`. No shell is involved."""
    def replace(match: re.Match) -> str:
        if match[0] == "$$":
            return "$"
        return env.get(match[1], match[0])
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", replace, text)


def pod_environment(job: dict, index: int | None) -> dict[str, str]:
    """The variables Kubernetes puts in the container: JOB_COMPLETION_INDEX for a pod of an indexed Job, then the
    manifest's env in order (each value expanded with the ones before it)."""
    env = {} if index is None else {"JOB_COMPLETION_INDEX": str(index)}
    for item in _container(job).get("env", []):
        env[item["name"]] = expand(item["value"], env)
    return env


def _mount_here(text: str, mounts: dict[str, Path]) -> str:
    """A mountPath in the command, as the directory that stands in for that mount here."""
    for mount_path, local in sorted(mounts.items(), key=lambda item: -len(item[0])):
        text = re.sub(re.escape(mount_path) + r"(?![\w.-])", lambda _, here=local: str(here), text)
    return text


def run_pod(job: dict, index: int | None, claims: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Start the pod of `job` with this completion index here, as a node would (see the module docstring)."""
    pod = job["spec"]["template"]["spec"]
    container = _container(job)
    env = pod_environment(job, index)
    volumes = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes", [])}
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        sub = expand(mount["subPathExpr"], env) if "subPathExpr" in mount else mount.get("subPath", "")
        local = claims / volumes[mount["name"]] / sub
        local.mkdir(parents=True, exist_ok=True)  # the kubelet creates a missing subPath directory
        mounts[mount["mountPath"]] = local
    argv = [_mount_here(expand(part, env), mounts) for part in container["command"] + container.get("args", [])]
    assert container["workingDir"], "the pod must run in the image's checkout (benchmarks/, conftest.py)"
    base = {k: v for k, v in os.environ.items() if k not in SHARD_VARIABLES and not k.startswith("SLURM_")}
    path = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "/usr/bin:/bin")])
    return subprocess.run(argv, cwd=REPO, env={**base, "PATH": path, **env}, capture_output=True, text=True,
                          timeout=timeout, check=False)


# ---------------------------------------------------------------------------------------------- schema validation

def _validate(doc: dict, strict: bool = True) -> str:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is not installed (pip install kubernetes-validate)")
    return kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=strict)


@pytest.mark.parametrize("name", ["sweep-job.yaml", "merge-job.yaml", "results-pvc.yaml"])
def test_each_manifest_is_valid_kubernetes(name: str):
    for doc in _documents(K8S / name):
        assert _validate(doc) == KUBERNETES_VERSION


def _misspelled(job: dict) -> None:
    job["spec"]["completionsMode"] = job["spec"].pop("completionMode")


def _wrong_type(job: dict) -> None:
    job["spec"]["parallelism"] = "four"


def _misplaced(job: dict) -> None:
    container = _container(job)
    container["nvidia.com/gpu"] = container["resources"]["limits"].pop("nvidia.com/gpu")


@pytest.mark.parametrize("damage", [_misspelled, _wrong_type, _misplaced])
def test_validation_catches_a_broken_manifest(damage):
    """The check is only worth something if it fails: a field Kubernetes does not know, or a value of the wrong
    type, is refused (the API server would drop an unknown field silently, or refuse the Job)."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
    job = _only(K8S / "sweep-job.yaml")
    damage(job)
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(job)


def test_only_the_strict_schema_sees_a_misspelled_field():
    """Why the validation is strict: the plain schema allows fields it does not know."""
    job = _only(K8S / "sweep-job.yaml")
    _misspelled(job)
    assert _validate(job, strict=False) == KUBERNETES_VERSION


# ---------------------------------------------------------------------------------------- the manifests' contract

def test_the_sweep_is_an_indexed_job_whose_count_vitcnn_knows():
    job = _only(K8S / "sweep-job.yaml")
    spec, pod, container = job["spec"], job["spec"]["template"]["spec"], _container(job)
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == int(_env(container)["VITCNN_SHARD_COUNT"])
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["restartPolicy"] == "Never"  # required by backoffLimitPerIndex and podFailurePolicy
    assert spec["backoffLimitPerIndex"] >= 1
    fail_index = [rule for rule in spec["podFailurePolicy"]["rules"] if rule["action"] == "FailIndex"]
    assert 1 in fail_index[0]["onExitCodes"]["values"]  # a failed setting: not retried, its run file is kept


def test_sweep_and_merge_share_the_sweep_directory_on_one_claim():
    sweep, merge = _only(K8S / "sweep-job.yaml"), _only(K8S / "merge-job.yaml")
    claim = _only(K8S / "results-pvc.yaml")
    assert "ReadWriteMany" in claim["spec"]["accessModes"]  # shards of one sweep run on several nodes

    def results_mount(job: dict) -> tuple[str, str]:
        (mount,) = [m for m in _container(job)["volumeMounts"] if m["mountPath"] == "/results"]
        (volume,) = [v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
        return volume["persistentVolumeClaim"]["claimName"], mount["subPathExpr"]

    assert results_mount(sweep) == results_mount(merge) == (claim["metadata"]["name"], "sweeps/$(VITCNN_SWEEP)")
    assert _env(_container(sweep))["VITCNN_SWEEP"] == _env(_container(merge))["VITCNN_SWEEP"]


# --------------------------------------------------------------------------------------------------- submit.sh

FAKE_KUBECTL = textwrap.dedent("""\
    import json, os, sys
    from pathlib import Path
    state = Path(os.environ["FAKE_KUBECTL_DIR"])
    with open(state / "calls.jsonl", "a") as log:
        log.write(json.dumps(sys.argv[1:]) + "\\n")
    args = sys.argv[1:]
    if args[:3] == ["create", "-f", "-"]:
        text = sys.stdin.read()
        number = len(list(state.glob("created-*.yaml")))
        (state / f"created-{number}.yaml").write_text(text)
        name = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("  name:"))
        print(f"job.batch/{name} created")
    elif args[:2] == ["get", "job"]:
        script = json.loads((state / "script.json").read_text())
        if "failedIndexes" in args[-1]:
            print(script["failed_indexes"], end="")
        else:
            answers = script["conditions"][args[2]]
            print(answers.pop(0) if len(answers) > 1 else answers[0], end="")
            (state / "script.json").write_text(json.dumps(script))
    elif args[0] == "logs":
        print(f"log of {args[1]}")
    else:
        sys.exit(f"fake kubectl: unexpected {args}")
    """)


def submit(tmp_path: Path, *args: str, conditions: dict[str, list[str]] | None = None,
           failed_indexes: str = "", script_dir: Path = K8S) -> tuple[subprocess.CompletedProcess, list, list[dict]]:
    """Run `submit.sh ARGS` against the stand-in kubectl; returns the result, kubectl's calls, the created Jobs."""
    state = tmp_path / "kubectl"
    bin_dir = tmp_path / "bin"
    state.mkdir(parents=True)
    bin_dir.mkdir(parents=True)
    (bin_dir / "fake_kubectl.py").write_text(FAKE_KUBECTL)
    (bin_dir / "kubectl").write_text(f'#!/bin/sh\nexec "{sys.executable}" "{bin_dir / "fake_kubectl.py"}" "$@"\n')
    (bin_dir / "kubectl").chmod(0o755)
    (state / "script.json").write_text(json.dumps({"conditions": conditions or {}, "failed_indexes": failed_indexes}))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "FAKE_KUBECTL_DIR": str(state), "VITCNN_K8S_POLL_S": "0"}
    done = subprocess.run(["bash", str(script_dir / "submit.sh"), *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    log = state / "calls.jsonl"
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    created = [_only(path) for path in sorted(state.glob("created-*.yaml"))]
    return done, calls, created


def _filled_in(name: str, n: int, sweep: str, pytest_args: list[str]) -> dict:
    """The shipped manifest `name` with what submit.sh fills in set by hand: the expected Job, nothing else changed."""
    job = _only(K8S / name)
    kind = "sweep" if name.startswith("sweep") else "merge"
    job["metadata"]["name"] = f"vitcnn-{kind}-{sweep}"
    container = _container(job)
    for item in container["env"]:
        item["value"] = {"VITCNN_SHARD_COUNT": str(n), "VITCNN_SWEEP": sweep}[item["name"]]
    if kind == "sweep":
        job["spec"]["completions"] = job["spec"]["parallelism"] = n
        container["args"] = pytest_args
    return job


SWEEP_DONE = {f"vitcnn-sweep-{SWEEP}": ["", "SuccessCriteriaMet", "SuccessCriteriaMet Complete"],
              f"vitcnn-merge-{SWEEP}": ["", "Complete"]}


def test_submit_creates_the_sweep_waits_for_it_then_merges(tmp_path: Path):
    odd = ["-m", 'not "quote \\ back"', "-k", "vit and not (convnext or nfnet)"]
    done, calls, created = submit(tmp_path, str(SHARDS), SWEEP, *TINY, *odd, conditions=copy.deepcopy(SWEEP_DONE))
    assert done.returncode == 0, done.stdout + done.stderr
    sweep_job, merge_job = f"vitcnn-sweep-{SWEEP}", f"vitcnn-merge-{SWEEP}"
    verbs = [(c[0], c[2] if c[0] == "get" else c[-1]) for c in calls]
    assert verbs == [("create", "-"), ("get", sweep_job), ("get", sweep_job), ("get", sweep_job),
                     ("create", "-"), ("get", merge_job), ("get", merge_job), ("logs", f"job/{merge_job}")]
    assert created == [_filled_in("sweep-job.yaml", SHARDS, SWEEP, [*TINY, *odd]),
                       _filled_in("merge-job.yaml", SHARDS, SWEEP, [])]
    if importlib.util.find_spec("kubernetes_validate"):  # the rest of this test needs no schemas
        for job in created:
            _validate(job)
    assert f"sweeps/{SWEEP}/run.json" in done.stdout


def test_a_failed_sweep_is_still_merged_and_the_exit_code_says_so(tmp_path: Path):
    conditions = {f"vitcnn-sweep-{SWEEP}": ["", "FailureTarget Failed"], f"vitcnn-merge-{SWEEP}": ["Complete"]}
    done, _, created = submit(tmp_path, "2", SWEEP, *TINY, conditions=conditions, failed_indexes="1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "failed indexes: 1" in done.stderr
    assert [job["metadata"]["name"] for job in created] == [f"vitcnn-sweep-{SWEEP}", f"vitcnn-merge-{SWEEP}"]

    conditions = {f"vitcnn-sweep-{SWEEP}": ["Complete"], f"vitcnn-merge-{SWEEP}": ["Failed"]}
    done, _, _ = submit(tmp_path / "merge-failed", "2", SWEEP, conditions=conditions)
    assert done.returncode == 2 and f"vitcnn-merge-{SWEEP} failed" in done.stderr, done.stdout + done.stderr


@pytest.mark.parametrize("args, message", [
    (["0", SWEEP], "N must be a positive integer"),
    (["3", "Tiny_CPU"], "SWEEP must be"),
    (["3", "x" * 41], "SWEEP must be"),
    (["3"], "usage"),
])
def test_submit_refuses_bad_arguments_before_calling_kubectl(tmp_path: Path, args: list[str], message: str):
    done, calls, _ = submit(tmp_path, *args)
    assert done.returncode == 2 and message in done.stderr and calls == []


def test_submit_refuses_a_manifest_whose_lines_it_cannot_fill_in(tmp_path: Path):
    """An edited layout (here the env entry in block form) must not go out with the shipped count in it."""
    copied = tmp_path / "k8s"
    shutil.copytree(K8S, copied)
    text = (copied / "sweep-job.yaml").read_text()
    block = text.replace('- {name: VITCNN_SHARD_COUNT, value: "4"}',
                         '- name: VITCNN_SHARD_COUNT\n              value: "4"')
    assert block != text
    (copied / "sweep-job.yaml").write_text(block)
    done, _, created = submit(tmp_path, str(SHARDS), SWEEP, script_dir=copied)
    assert done.returncode == 2 and "set 5 of the 6 lines" in done.stderr, done.stdout + done.stderr
    assert created == []


# ------------------------------------------------------------------------------------- the pods, run here for real

def _log(done: subprocess.CompletedProcess) -> str:
    return (done.stdout + done.stderr)[-4000:]


@pytest.mark.slow
def test_each_pod_runs_its_shard_and_the_merge_pod_merges_them(tmp_path: Path):
    done, _, created = submit(tmp_path / "submit", str(SHARDS), SWEEP, *TINY, conditions=copy.deepcopy(SWEEP_DONE))
    assert done.returncode == 0, done.stdout + done.stderr
    sweep_job, merge_job = created
    claims = tmp_path / "claims"
    for index in range(sweep_job["spec"]["completions"]):
        pod = run_pod(sweep_job, index, claims)
        assert pod.returncode == 0, _log(pod)
    merged = run_pod(merge_job, None, claims)
    assert merged.returncode == 0, _log(merged)
    assert f"{len(TINY_IDS)} settings from {SHARDS} of {SHARDS} shards" in merged.stdout

    out = claims / "vitcnn-results" / "sweeps" / SWEEP
    shards = [json.loads((out / f"shard-{i}.json").read_text())["vitcnn"]["shard"] for i in range(SHARDS)]
    assert [(s["index"], s["count"], s["source"]) for s in shards] == [(i + 1, SHARDS, "k8s") for i in range(SHARDS)]
    raw = json.loads((out / "run.json").read_text())
    assert sorted(b["extra_info"]["setting_id"] for b in raw["benchmarks"]) == sorted(TINY_IDS)  # each exactly once
    assert sorted(entry["id"] for entry in raw["vitcnn"]["settings"]) == sorted(TINY_IDS)
    section = raw["vitcnn"]["shards"]
    assert section["count"] == SHARDS and section["missing"] == []
    assert [(m["index"], m["source"]) for m in section["merged"]] == [(i + 1, "k8s") for i in range(SHARDS)]
    assert sum(m["settings"] for m in section["merged"]) == len(TINY_IDS)
    run = load_run(out / "run.json")
    assert {i: r.status for i, r in run.results.items()} == dict.fromkeys(TINY_IDS, "ok")
    report = (out / "report" / "report.md").read_text()
    assert all(setting in report for setting in TINY_IDS)
