"""`python -m vitcnn sweep --gpus N -o OUT.json -- PYTEST ARGS`: one node, N GPUs, one merged run.

Starts one pytest per GPU at once, each on its own device (CUDA_VISIBLE_DEVICES) and its own shard
(`--vitcnn-shard=K/N`, `--benchmark-json=<shard dir>/shard-K-of-N.json`), waits for all, then merges what they
wrote with `vitcnn.merge`. `--workers N` does the same on CPU with the cores split between workers
(`--vitcnn-threads`): the workers still compete for memory bandwidth and caches, so this path is for testing the
machinery, not for timing numbers. A shard that fails is named; what the others wrote is still merged (the merged
run lists the missing shards) and the exit status is non-zero.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vitcnn.scale import merge

RESERVED_OPTIONS = ("--vitcnn-shard", "--benchmark-json")


class SweepError(ValueError):
    """A sweep that cannot start as asked."""


@dataclass(frozen=True)
class ShardJob:
    """One pytest process of the sweep."""

    index: int  # 1-based
    count: int
    command: list[str]
    env: dict[str, str]
    json_path: Path
    log_path: Path
    device_label: str


def _visible_gpus(count: int, env: dict[str, str]) -> list[str]:
    """The device ids to hand out: the entries of an existing CUDA_VISIBLE_DEVICES (e.g. set by Slurm), else
    0..count-1 after checking that torch sees that many GPUs."""
    given = env.get("CUDA_VISIBLE_DEVICES")
    if given is not None and given.strip():
        devices = [d.strip() for d in given.split(",") if d.strip()]
    else:
        import torch

        devices = [str(i) for i in range(torch.cuda.device_count())]
    if len(devices) < count:
        raise SweepError(f"--gpus {count} asked for, but only {len(devices)} GPU(s) are visible "
                         f"({'CUDA_VISIBLE_DEVICES=' + given if given else 'torch.cuda.device_count()'})")
    return devices[:count]


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def plan(pytest_args: list[str], shard_dir: Path, gpus: int | None = None,
         workers: int | None = None, env: dict[str, str] | None = None, python: str = sys.executable,
         cores: int | None = None) -> list[ShardJob]:
    """The shard processes of a sweep over `gpus` GPUs or `workers` CPU workers (exactly one of them)."""
    env = dict(os.environ if env is None else env)
    if (gpus is None) == (workers is None):
        raise SweepError("give exactly one of --gpus N and --workers N")
    count = gpus if gpus is not None else workers
    if count is None or count < 1:
        raise SweepError(f"the number of shards must be >= 1, got {count}")
    for option in RESERVED_OPTIONS + (("--vitcnn-threads",) if workers else ()):
        if any(arg == option or arg.startswith(option + "=") for arg in pytest_args):
            raise SweepError(f"{option} is set by the sweep for each shard; leave it out of the pytest arguments")
    for variable in ("SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"):
        if variable in env:
            raise SweepError(f"{variable} is set: this process is already one shard of a scheduler's sweep, and a "
                             f"sweep here would run the whole selection again; run pytest directly instead")
    devices = _visible_gpus(count, env) if gpus else []
    threads = max(1, (cores or _usable_cores()) // count)
    jobs = []
    for k in range(1, count + 1):
        stem = f"shard-{k}-of-{count}"
        json_path, log_path = shard_dir / f"{stem}.json", shard_dir / f"{stem}.log"
        command = [python, "-m", "pytest", *pytest_args, f"--vitcnn-shard={k}/{count}",
                   f"--benchmark-json={json_path}"]
        shard_env = dict(env)
        if gpus:
            shard_env["CUDA_VISIBLE_DEVICES"] = devices[k - 1]
            label = f"GPU {devices[k - 1]}"
        else:
            command.append(f"--vitcnn-threads={threads}")
            shard_env["CUDA_VISIBLE_DEVICES"] = ""  # CPU workers: no GPU, whatever the machine has
            shard_env["OMP_NUM_THREADS"] = str(threads)
            label = f"CPU, {threads} thread(s)"
        jobs.append(ShardJob(k, count, command, shard_env, json_path, log_path, label))
    return jobs


def check_outputs(jobs: list[ShardJob], output: Path, force: bool) -> None:
    """Nothing stored is replaced unless forced: the merged run and every shard's files."""
    if force:
        return
    existing = [p for p in [output] + [q for job in jobs for q in (job.json_path, job.log_path)] if p.exists()]
    if existing:
        raise SweepError(f"{', '.join(map(str, existing))} exist(s); pass --force to replace, or choose -o/--shard-dir")


def run(jobs: list[ShardJob], output: Path, force: bool = False) -> int:
    """Start every shard at once, wait, merge. Exit 0: all shards passed and merged; 1: a shard failed (what
    exists is merged); 2: nothing to merge, or the shards could not be merged."""
    jobs[0].json_path.parent.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        job.json_path.unlink(missing_ok=True)  # only reached with --force (see _check_outputs)
    started = time.monotonic()
    running = []
    try:
        for job in jobs:
            log = open(job.log_path, "w")
            process = subprocess.Popen(job.command, env=job.env, stdout=log, stderr=subprocess.STDOUT)
            running.append((job, process, log))
            print(f"vitcnn sweep: shard {job.index}/{job.count} started on {job.device_label} "
                  f"(pid {process.pid}, log {job.log_path})", flush=True)
        codes = {}
        for job, process, log in running:
            codes[job.index] = process.wait()
            log.close()
            print(f"vitcnn sweep: shard {job.index}/{job.count} exited {codes[job.index]} after "
                  f"{time.monotonic() - started:.0f} s", flush=True)
    except BaseException:
        for _, process, _ in running:
            if process.poll() is None:
                process.terminate()
        raise
    failed = [job for job in jobs if codes[job.index] != 0]
    for job in failed:
        wrote = "its run file was written" if job.json_path.exists() else "no run file"
        print(f"vitcnn sweep: shard {job.index}/{job.count} FAILED (exit {codes[job.index]}; {wrote}; "
              f"see {job.log_path})", file=sys.stderr)
    present = [job.json_path for job in jobs if job.json_path.exists()]
    if not present:
        print("vitcnn sweep: no shard wrote a run file; nothing to merge", file=sys.stderr)
        return 2
    try:
        merged = merge.merge_files(present, output, force=force, partial=len(present) < len(jobs))
    except (ValueError, OSError) as exc:
        print(f"vitcnn sweep: merge failed: {exc}", file=sys.stderr)
        return 2
    missing = merged["vitcnn"]["shards"]["missing"]
    note = f" (MISSING shard(s) {', '.join(map(str, missing))})" if missing else ""
    print(f"vitcnn sweep: merged {len(present)} of {len(jobs)} shards into {output}{note} "
          f"in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0
