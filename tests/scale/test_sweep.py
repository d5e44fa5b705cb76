"""Sharded runs for real: two shards through pytest merged end to end, `sweep --workers`, and the sweep's plan."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pytest_runs import REPO, SHARD_VARIABLES, run_benchmarks
from vitcnn.__main__ import main
from vitcnn.runfile import load_run
from vitcnn.scale import sweep

TINY = ("--vitcnn-models", "nfnet_tiny,convnext_atto", "--vitcnn-res", "64", "--vitcnn-batch", "1",
        "--vitcnn-compile", "eager", "--vitcnn-target-seconds", "0.05", "--vitcnn-warmup-seconds", "0.05")
TINY_IDS = {"nfnet_tiny-64px-bs1-fp32-nchw-eager", "convnext_atto-64px-bs1-fp32-nchw-eager"}


# ------------------------------------------------------------------------------------------------- the plan

def test_plan_gives_each_shard_its_gpu_index_and_files(tmp_path):
    jobs = sweep.plan(["benchmarks", "--benchmark-only"], tmp_path / "shards", gpus=2,
                      env={"CUDA_VISIBLE_DEVICES": "2,3"}, python="python")
    assert [job.env["CUDA_VISIBLE_DEVICES"] for job in jobs] == ["2", "3"]
    assert jobs[1].command == ["python", "-m", "pytest", "benchmarks", "--benchmark-only", "--vitcnn-shard=2/2",
                               f"--benchmark-json={tmp_path / 'shards' / 'shard-2-of-2.json'}"]


def test_plan_splits_cores_between_cpu_workers(tmp_path):
    jobs = sweep.plan([], tmp_path, workers=3, env={}, cores=8)
    assert all("--vitcnn-threads=2" in job.command and job.env["CUDA_VISIBLE_DEVICES"] == "" for job in jobs)


@pytest.mark.parametrize("kwargs, args, env, message", [
    ({"gpus": 3}, [], {"CUDA_VISIBLE_DEVICES": "0,1"}, "only 2 GPU"),
    ({"gpus": 2}, ["--vitcnn-shard=1/2"], {"CUDA_VISIBLE_DEVICES": "0,1"}, "set by the sweep"),
    ({"workers": 2}, ["--benchmark-json", "x.json"], {}, "set by the sweep"),
    ({"workers": 2}, ["--vitcnn-threads=4"], {}, "set by the sweep"),
    ({"workers": 2}, [], {"SLURM_ARRAY_TASK_ID": "1"}, "already one shard"),
    ({"workers": 0}, [], {}, ">= 1"),
    ({}, [], {}, "exactly one"),
])
def test_plan_refuses_what_would_go_wrong(tmp_path, kwargs, args, env, message):
    with pytest.raises(sweep.SweepError, match=message):
        sweep.plan(args, tmp_path, env=env, **kwargs)


# ------------------------------------------------------------------------------------------------ real runs

@pytest.mark.parametrize("args, env, message", [
    (("--vitcnn-shard=3/2",), {}, "K/N"),
    (("--vitcnn-shard=1/3",), {}, "only 2 settings are selected"),
    ((), {"JOB_COMPLETION_INDEX": "0"}, "VITCNN_SHARD_COUNT"),
])
def test_bad_shards_are_usage_errors(args, env, message):
    done = run_benchmarks(*TINY, *args, env=env)
    assert done.returncode == 4 and message in done.stderr, done.stderr[-2000:]


@pytest.mark.slow
def test_two_shards_merged_end_to_end_gate_like_one_run(tmp_path):
    paths = []
    for k in (1, 2):
        path = tmp_path / f"shard{k}.json"
        done = run_benchmarks(*TINY, f"--vitcnn-shard={k}/2", f"--benchmark-json={path}")
        assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-3000:]
        assert f"vitcnn: shard {k}/2 (option): 1 of 2 selected settings" in done.stdout
        paths.append(path)
    sections = [json.loads(p.read_text())["vitcnn"]["shard"] for p in paths]
    assert {i for s in sections for i in s["ids"]} == TINY_IDS and sections[0]["ids"] != sections[1]["ids"]
    out = tmp_path / "merged.json"
    assert main(["merge", "-o", str(out), *map(str, paths)]) == 0
    merged = load_run(out)
    assert set(merged.results) == TINY_IDS and all(len(r.samples) >= 10 for r in merged.results.values())
    assert main(["baseline", "save", str(out), "--dir", str(tmp_path / "baselines")]) == 0
    stored = next((tmp_path / "baselines").glob("*.json"))
    assert main(["compare", str(stored), str(out)]) == 0


def _sweep(tmp_path: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "vitcnn", "sweep", "--workers", "2", "-o", str(tmp_path / "out.json"),
               "--", "benchmarks", "--benchmark-only", "-p", "no:cacheprovider", *TINY, *extra]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={**{k: v for k, v in os.environ.items() if k not in SHARD_VARIABLES}, **(env or {})})


@pytest.mark.slow
def test_sweep_with_cpu_workers_merges_every_shard(tmp_path):
    done = _sweep(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "merged 2 of 2 shards" in done.stdout
    assert set(load_run(tmp_path / "out.json").results) == TINY_IDS
    assert (tmp_path / "out.shards" / "shard-1-of-2.log").exists()
    again = _sweep(tmp_path)  # nothing stored is replaced without --force
    assert again.returncode == 2 and "pass --force" in again.stderr


@pytest.mark.slow
def test_a_shard_with_an_error_result_fails_the_sweep_and_every_result_is_merged(tmp_path):
    done = _sweep(tmp_path, "-p", "tests.force_failure", env={"VITCNN_FORCE_ERROR": "nfnet_tiny"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED (exit 1; its run file was written" in done.stderr
    statuses = {i: r.status for i, r in load_run(tmp_path / "out.json").results.items()}
    assert statuses == {"nfnet_tiny-64px-bs1-fp32-nchw-eager": "error", "convnext_atto-64px-bs1-fp32-nchw-eager": "ok"}


@pytest.mark.slow
def test_a_shard_that_dies_without_a_run_file_fails_the_sweep_but_the_rest_is_merged(tmp_path, monkeypatch, capsys):
    """The partial merge: shard 1 runs for real, shard 2 is killed before it writes anything (exit 137)."""
    monkeypatch.chdir(REPO)
    env = {k: v for k, v in os.environ.items() if k not in SHARD_VARIABLES}
    real, killed = sweep.plan(["benchmarks", "--benchmark-only", "-p", "no:cacheprovider", *TINY], tmp_path / "shards",
                              workers=2, env=env)
    killed = dataclasses.replace(killed, command=[sys.executable, "-c", "raise SystemExit(137)"])
    out = tmp_path / "out.json"
    assert sweep.run([real, killed], out) == 1
    captured = capsys.readouterr()
    assert "shard 2/2 FAILED (exit 137; no run file" in captured.err, captured.err
    assert "merged 1 of 2 shards" in captured.out and "(MISSING shard(s) 2)" in captured.out, captured.out
    assert json.loads(out.read_text())["vitcnn"]["shards"]["missing"] == [2]
    ran = json.loads(real.json_path.read_text())["vitcnn"]["shard"]["ids"]
    assert len(ran) == 1 and set(load_run(out).results) == set(ran) < TINY_IDS


@pytest.mark.parametrize("env, count, expected", [
    ({}, 2, ["0", "1"]),
    ({"CUDA_VISIBLE_DEVICES": " 5, GPU-8f3a ,7"}, 2, ["5", "GPU-8f3a"]),  # Slurm's list, UUIDs, stray spaces
], ids=["torch counts", "given list"])
def test_gpus_are_counted_from_the_visible_list_else_from_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                env: dict, count: int, expected: list[str]):
    """--gpus N hands out the first N visible devices: the entries of CUDA_VISIBLE_DEVICES when it lists any,
    else torch's device count, each shard pinned to one."""
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    jobs = sweep.plan([], tmp_path, gpus=count, env=env, python="python")
    assert [job.env["CUDA_VISIBLE_DEVICES"] for job in jobs] == expected
    assert [job.device_label for job in jobs] == [f"GPU {d}" for d in expected]


def test_more_gpus_than_torch_counts_is_refused_and_says_who_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(sweep.SweepError, match=r"--gpus 2 asked for, but only 1 GPU\(s\) are visible "
                                               r"\(torch.cuda.device_count\(\)\)"):
        sweep.plan([], tmp_path, gpus=2, env={}, python="python")


def test_a_sweep_in_which_no_shard_wrote_a_run_file_exits_2_and_names_every_shard(
        tmp_path: Path, capsys: pytest.CaptureFixture):
    """Both shards die before writing anything: nothing to merge is not a partial success (exit 2, no output
    file), and each failed shard is named with its exit code and log."""
    jobs = sweep.plan([], tmp_path / "shards", workers=2, env={}, python=sys.executable)
    dying = [dataclasses.replace(job, command=[sys.executable, "-c", f"raise SystemExit({10 + job.index})"])
             for job in jobs]
    out = tmp_path / "out.json"
    assert sweep.run(dying, out) == 2
    err = capsys.readouterr().err
    for job in dying:
        assert f"shard {job.index}/2 FAILED (exit {10 + job.index}; no run file; see {job.log_path})" in err, err
    assert "no shard wrote a run file; nothing to merge" in err
    assert not out.exists()
