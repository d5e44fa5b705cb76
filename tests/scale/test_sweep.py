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
