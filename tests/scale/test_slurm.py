"""The Slurm examples on a real scheduler: a one-node Slurm cluster (munged, slurmctld, slurmd on localhost) started
in a temporary directory, `examples/slurm/submit.sh` run unchanged against it, the array and its `afterany` merge
job waited for, and what they wrote checked.

The cluster is CPU only (2 CPUs, no GPUs, no accounting), so the shards ask for no GPU (VITCNN_SLURM_GRES empty)
and one CPU each (VITCNN_SLURM_CPUS=1). It needs root (slurmd starts every job as its user) and Debian's
`slurm-wlm` and `munge` packages; without them the tests are skipped and say why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.pytest_runs import REPO, SHARD_VARIABLES
from vitcnn.runfile import load_run

pytestmark = pytest.mark.slurm

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "sinfo", "scancel")
NODE = "localhost"
START_TIMEOUT_S = 60
JOB_TIMEOUT_S = 300

TINY = ("--vitcnn-models", "vit_t16,convnext_atto,nfnet_tiny", "--vitcnn-res", "64", "--vitcnn-batch", "1",
        "--vitcnn-compile", "eager", "--vitcnn-target-seconds", "0.05", "--vitcnn-warmup-seconds", "0.05",
        "--vitcnn-threads", "1", "--vitcnn-compile-times", "off", "--vitcnn-eager-twin", "off")
TINY_IDS = {"vit_t16-64px-bs1-fp32-auto-eager", "convnext_atto-64px-bs1-fp32-nchw-eager",
            "nfnet_tiny-64px-bs1-fp32-nchw-eager"}


def _missing() -> str | None:
    """Why a real cluster cannot start here, or None."""
    if not sys.platform.startswith("linux"):
        return "a Slurm cluster needs Linux"
    absent = [name for name in DAEMONS + CLIENTS
              if not shutil.which(name) and not Path("/usr/sbin", name).exists()]
    if absent:
        return f"Slurm/munge not installed ({', '.join(absent)} missing; apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "slurmd must run as root to start jobs (run the slurm tests as root)"
    return None


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmCluster:
    """A one-node cluster whose every file (config, munge key and socket, state, spool, logs, pids) is under root."""

    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.socket = root / "run" / "munge.socket"
        self.logs = root / "log"
        self.processes: dict[str, subprocess.Popen] = {}

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for Slurm's commands (and, through sbatch, the jobs): this cluster's config, this
        Python first on PATH, and no scheduler shard variables inherited from an outer job."""
        base = {k: v for k, v in os.environ.items() if k not in SHARD_VARIABLES and not k.startswith("SLURM_")}
        path = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "/usr/bin:/bin")])
        return {**base, "SLURM_CONF": str(self.conf), "PATH": path, **extra}

    def write_config(self) -> None:
        self.root.chmod(0o755)  # munged wants every directory above its socket searchable by all
        for sub, mode in (("munge", 0o700), ("state", 0o700), ("spool", 0o700), ("log", 0o700), ("run", 0o755)):
            (self.root / sub).mkdir()
            (self.root / sub).chmod(mode)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        r = self.root
        self.conf.write_text("\n".join([
            "ClusterName=vitcnn-test",
            f"SlurmctldHost={NODE}",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.socket}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'run' / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.logs / 'slurmctld.log'}",
            f"SlurmdLogFile={self.logs / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "SchedulerType=sched/backfill",
            "MpiDefault=none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "ReturnToService=2",
            "MinJobAge=600",  # finished jobs stay visible to scontrol (there is no accounting for sacct)
            "SchedulerParameters=sched_interval=1",
            f"NodeName={NODE} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN",
            f"PartitionName=test Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
        ]) + "\n")

    def start(self) -> float:
        """Start the three daemons in the foreground (so they are ours to stop) and wait until the node is idle;
        returns how long that took."""
        self.write_config()
        started = time.monotonic()
        r = self.root
        self._spawn("munged", [_binary("munged"), "--foreground", f"--socket={self.socket}",
                               f"--key-file={r / 'munge' / 'munge.key'}", f"--pid-file={r / 'run' / 'munged.pid'}",
                               f"--seed-file={r / 'munge' / 'munged.seed'}", f"--log-file={self.logs / 'munged.log'}"])
        self._wait(lambda: self.socket.exists(), "munged's socket")
        self._spawn("slurmctld", [_binary("slurmctld"), "-D", "-f", str(self.conf)])
        self._spawn("slurmd", [_binary("slurmd"), "-D", "-f", str(self.conf), "-N", NODE])
        self._wait(lambda: self.command("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.strip() == "idle",
                   f"node {NODE} idle")
        return time.monotonic() - started

    def _spawn(self, name: str, command: list[str]) -> None:
        with open(self.logs / f"{name}.out", "wb") as out:
            self.processes[name] = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                                    env=self.env(), cwd=self.root)

    def _wait(self, ready, what: str, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"waiting for {what}: " + (f"daemon(s) exited {dead}" if dead else
                                   f"not ready after {timeout} s") + "\n" + self.log_tails())
            time.sleep(0.2)

    def log_tails(self, lines: int = 15) -> str:
        parts = []
        for log in sorted(self.logs.glob("*")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    def command(self, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        done = subprocess.run(list(args), check=False, capture_output=True, text=True, env=self.env(), timeout=60, **kwargs)
        if check and done.returncode:
            raise RuntimeError(f"{' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}")
        return done

    def wait_for(self, jobs: list[str], timeout: float = JOB_TIMEOUT_S) -> None:
        """Until none of `jobs` (array tasks included) is pending, running or completing. A job whose dependency
        can never be satisfied (e.g. an `afterok` after a failed task) would wait forever: that fails at once."""
        deadline = time.monotonic() + timeout
        while True:
            queued = self.command("squeue", "-h", "-j", ",".join(jobs), "-o", "%i %T %r", check=False).stdout.strip()
            if not queued:
                return
            if "DependencyNeverSatisfied" in queued:
                raise AssertionError(f"a job waits for a dependency that can never be satisfied:\n{queued}")
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs {jobs} not done after {timeout} s:\n{queued}\n{self.log_tails()}")
            time.sleep(0.5)

    def records(self, job: str) -> list[dict[str, str]]:
        """scontrol's record of a finished job (one per array task): its fields as a dict."""
        out = self.command("scontrol", "-o", "show", "job", job).stdout
        return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.splitlines() if line.strip()]

    def stop(self) -> None:
        """Cancel whatever is left, then stop the daemons (slurmd and slurmctld first, munged last)."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            left = self.command("squeue", "-h", "-o", "%i", check=False).stdout.split()
            if left:
                self.command("scancel", *left, check=False)
                deadline = time.monotonic() + 15
                while self.command("squeue", "-h", "-o", "%i", check=False).stdout.strip():
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


@pytest.fixture(scope="module")
def slurm():
    reason = _missing()
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="vitcnn-slurm-"))  # short: munge's socket path must fit a sockaddr_un
    cluster = SlurmCluster(root)
    try:
        seconds = cluster.start()
        print(f"slurm cluster up in {seconds:.1f} s ({root})")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _submit(cluster: SlurmCluster, out: Path, *args: str, env: dict | None = None) -> tuple[str, str]:
    """examples/slurm/submit.sh 3 OUT ARGS from the repository root, as a user on a CPU-only cluster would run it;
    returns the array and merge job ids."""
    done = subprocess.run(["examples/slurm/submit.sh", "3", str(out), *TINY, *args], cwd=REPO, check=False,
                          capture_output=True, text=True, timeout=60,
                          env=cluster.env(VITCNN_SLURM_GRES="", VITCNN_SLURM_CPUS="1", **(env or {})))
    assert done.returncode == 0, done.stdout + done.stderr
    match = re.search(r"submitted array job (\d+) \(3 shards\) and merge job (\d+)", done.stdout)
    assert match, done.stdout
    return match[1], match[2]


def _finished(cluster: SlurmCluster, array: str, merge: str) -> tuple[dict[str, tuple[str, str]], tuple[str, str]]:
    """Wait for both jobs; returns {array task id: (state, exit code)} and the merge job's (state, exit code)."""
    cluster.wait_for([array, merge])
    tasks = {r["ArrayTaskId"]: (r["JobState"], r["ExitCode"]) for r in cluster.records(array)}
    (merged,) = cluster.records(merge)
    return tasks, (merged["JobState"], merged["ExitCode"])


def _logs(out: Path) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in sorted(out.glob("*.log")))


def test_the_slurm_example_shards_a_sweep_and_merges_it(slurm: SlurmCluster, tmp_path: Path):
    out = tmp_path / "sweep"
    started = time.monotonic()
    array, merge = _submit(slurm, out)
    tasks, merged = _finished(slurm, array, merge)
    print(f"submit.sh to merged report: {time.monotonic() - started:.1f} s")
    assert tasks == {str(k): ("COMPLETED", "0:0") for k in (1, 2, 3)}, _logs(out)
    assert merged == ("COMPLETED", "0:0"), _logs(out)

    shards = [json.loads((out / f"shard-{k}.json").read_text())["vitcnn"]["shard"] for k in (1, 2, 3)]
    assert [(s["index"], s["count"], s["source"]) for s in shards] == [(k, 3, "slurm") for k in (1, 2, 3)]
    assert sorted(i for s in shards for i in s["ids"]) == sorted(TINY_IDS)  # one setting per task, none twice

    raw = json.loads((out / "run.json").read_text())
    assert sorted(b["extra_info"]["setting_id"] for b in raw["benchmarks"]) == sorted(TINY_IDS)  # each once
    assert sorted(e["id"] for e in raw["vitcnn"]["settings"]) == sorted(TINY_IDS)
    section = raw["vitcnn"]["shards"]
    assert section["count"] == 3 and section["missing"] == []
    assert [(m["index"], m["source"], m["settings"]) for m in section["merged"]] == [(k, "slurm", 1) for k in (1, 2, 3)]
    run = load_run(out / "run.json")
    assert set(run.results) == TINY_IDS
    assert all(r.status == "ok" and len(r.samples) >= 10 for r in run.results.values())

    assert "3 settings from 3 of 3 shards" in (out / "merge.log").read_text()
    report = (out / "report" / "report.md").read_text()
    assert all(setting in report for setting in TINY_IDS), report


def test_a_failed_array_task_is_still_merged_and_named(slurm: SlurmCluster, tmp_path: Path):
    """What `afterany` is for: one task's setting fails (its pytest exits 1, so Slurm marks the task FAILED), the
    merge job runs anyway, the merged run and the report name the failure, and the other shards' results are kept."""
    out = tmp_path / "sweep"
    array, merge = _submit(slurm, out, "-p", "tests.force_failure", env={"VITCNN_FORCE_ERROR": "nfnet_tiny"})
    tasks, merged = _finished(slurm, array, merge)
    owner = next(str(k) for k in (1, 2, 3) if "nfnet_tiny-64px-bs1-fp32-nchw-eager"
                 in json.loads((out / f"shard-{k}.json").read_text())["vitcnn"]["shard"]["ids"])
    assert tasks == {str(k): ("FAILED", "1:0") if str(k) == owner else ("COMPLETED", "0:0") for k in (1, 2, 3)}, \
        _logs(out)
    assert merged == ("COMPLETED", "0:0"), _logs(out)

    run = load_run(out / "run.json")
    statuses = {i: r.status for i, r in run.results.items()}
    assert statuses == {i: "error" if i.startswith("nfnet_tiny") else "ok" for i in TINY_IDS}
    assert all(len(run.results[i].samples) >= 10 for i in TINY_IDS if not i.startswith("nfnet_tiny"))
    assert json.loads((out / "run.json").read_text())["vitcnn"]["shards"]["missing"] == []
    report = (out / "report" / "report.md").read_text()
    row = next(line for line in report.splitlines() if "nfnet_tiny-64px-bs1-fp32-nchw-eager" in line
               and "error" in line)
    assert "kernel exploded" in row, row
