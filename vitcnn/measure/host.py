"""The host's state around a timed block: where this process's threads ran, how long they ran and waited for a CPU,
its context switches and page faults, the machine's steal time and the CPU time other processes took meanwhile
(the noisy-neighbour share), the speed of the core itself (a fixed pure-Python loop timed just before and just
after the block); on CUDA the SM clock and the clock-event (throttle) reasons at start and end.

A number without its host state is half a number: two processes of identical code can run a setting 10-60% apart
for their whole life, and a neighbour can slow one block many times over. Snapshots read counters the kernel keeps
anyway (/proc, getrusage, the root cgroup's CPU usage, NVML), outside the timed calls, so they cost the timing
nothing but the reads (tests/measure/test_host.py measures them). A source that a system does not have (no
schedstat, no cgroup files, no NVML) gives None for its fields, never an error.

Why the speed probe: on shared 2-core VMs every counter above can stay flat while the whole machine runs 20-30%
slower for minutes (the physical core's frequency or its other hyperthread, which no guest counter reports). A loop
that touches no memory and no torch slows with it (docs/results.md, "The machine speed probe"), so a run can say how
fast the machine was while it was timed, and the stored gate can tell a slow machine from slow code.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CGROUP_USAGE = (  # the CPU time of every process on the machine (the root cgroup), first one found
    (Path("/sys/fs/cgroup/cpu.stat"), "usage_usec", 1_000),  # cgroup v2
    (Path("/sys/fs/cgroup/unified/cpu.stat"), "usage_usec", 1_000),  # hybrid hierarchy
    (Path("/sys/fs/cgroup/cpuacct/cpuacct.usage"), None, 1),  # cgroup v1, ns
)
TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 1e7


@dataclass(frozen=True)
class Snapshot:
    """Counters at one instant. Times in ns; None where this system does not say."""

    wall_ns: int
    cpus: tuple[int, ...] | None  # the CPU each of this process's threads last ran on (busy threads first)
    run_ns: int | None  # this process's threads' time on a CPU (schedstat)
    wait_ns: int | None  # their time runnable but waiting for a CPU (schedstat run delay)
    own_cpu_ns: int  # this process's CPU time (getrusage)
    involuntary: int  # involuntary context switches (getrusage)
    minor_faults: int
    major_faults: int
    busy_ns: int | None  # CPU time of every process (root cgroup usage, else /proc/stat)
    busy_source: str | None
    steal_ns: int | None  # time the hypervisor ran something else on this VM's CPUs (/proc/stat)
    gpu: dict | None  # {"sm_clock_mhz": .., "throttle_reasons": [..]} from NVML


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def threads(pid: int | str = "self") -> list[tuple[int, int, int]]:
    """(cpu, run_ns, wait_ns) of each thread of `pid` (empty where /proc has no schedstat)."""
    found = []
    try:
        tids = os.listdir(PROC / str(pid) / "task")
    except OSError:
        return found
    for tid in tids:
        task = PROC / str(pid) / "task" / tid
        sched, stat = _read(task / "schedstat"), _read(task / "stat")
        if not sched or not stat:
            continue  # the thread ended between listing and reading
        try:
            run_ns, wait_ns = (int(v) for v in sched.split()[:2])
            cpu = int(stat.rsplit(")", 1)[1].split()[36])  # field 39, counted after the command name's ")"
        except (ValueError, IndexError):
            continue
        found.append((cpu, run_ns, wait_ns))
    return found


def machine_busy_ns() -> tuple[int | None, str | None]:
    """CPU time every process on the machine has taken, and where it was read (ns; cgroup counters are exact,
    /proc/stat counts in clock ticks of 10 ms)."""
    for path, key, scale in CGROUP_USAGE:
        text = _read(path)
        if text is None:
            continue
        try:
            value = int(text.split()[0]) if key is None else \
                next(int(line.split()[1]) for line in text.splitlines() if line.startswith(key + " "))
        except (ValueError, IndexError, StopIteration):
            continue
        return value * scale, str(path)
    fields = _proc_stat_cpu()
    if fields is None:
        return None, None
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return int((user + nice + system + irq + softirq) * TICK_NS), "/proc/stat"


def _proc_stat_cpu() -> list[int] | None:
    text = _read(PROC / "stat")
    if not text or not text.startswith("cpu "):
        return None
    try:
        return [int(v) for v in text.splitlines()[0].split()[1:]]
    except ValueError:
        return None


def steal_ns() -> int | None:
    fields = _proc_stat_cpu()
    return int(fields[7] * TICK_NS) if fields is not None and len(fields) > 7 else None


def snapshot(gpu: Callable[[], dict | None] | None = None) -> Snapshot:
    """The counters now (`gpu`: a reader of the GPU's clock and throttle reasons, None on CPU)."""
    wall = time.perf_counter_ns()
    found = threads()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    busy, source = machine_busy_ns()
    busiest = sorted(found, key=lambda t: -t[1])
    return Snapshot(
        wall_ns=wall, cpus=tuple(cpu for cpu, _, _ in busiest) if found else None,
        run_ns=sum(t[1] for t in found) if found else None, wait_ns=sum(t[2] for t in found) if found else None,
        own_cpu_ns=int((usage.ru_utime + usage.ru_stime) * 1e9), involuntary=usage.ru_nivcsw,
        minor_faults=usage.ru_minflt, major_faults=usage.ru_majflt, busy_ns=busy, busy_source=source,
        steal_ns=steal_ns(), gpu=gpu() if gpu is not None else None)


PROBE_LOOPS = 10_000  # ~0.3 ms of interpreter work on a 2024 server core
PROBE_REPEATS = 3  # the best of these: an interrupt in one repeat is not a slow machine


def speed_probe_ns(loops: int = PROBE_LOOPS, repeats: int = PROBE_REPEATS) -> int:
    """How long a fixed pure-Python loop takes now (ns, the best of `repeats`): the same instructions every time,
    no memory traffic beyond the first cache line and no library code, so it moves only with the core's speed."""
    best = None
    for _ in range(repeats):
        start = time.perf_counter_ns()
        total = 0
        for i in range(loops):
            total += i
        elapsed = time.perf_counter_ns() - start
        best = elapsed if best is None else min(best, elapsed)
    return best


def _delta(after: int | None, before: int | None) -> int | None:
    return None if after is None or before is None else after - before


def block_state(before: Snapshot, after: Snapshot, calls: int, cores: int | None = None) -> dict:
    """What happened on the host during one block of `calls` calls, from snapshots taken around it.

    `others_cores`: the CPU time other processes took, in cores (1.0: one core busy the whole block); `wait_share`:
    the part of this process's runnable time spent waiting for a CPU; `steal_share`: stolen time per core."""
    wall = max(after.wall_ns - before.wall_ns, 1)
    cores = cores or os.cpu_count() or 1
    busy, own = _delta(after.busy_ns, before.busy_ns), after.own_cpu_ns - before.own_cpu_ns
    run, wait = _delta(after.run_ns, before.run_ns), _delta(after.wait_ns, before.wait_ns)
    steal = _delta(after.steal_ns, before.steal_ns)
    return {
        "wall_s": wall / 1e9,
        "cpus_start": list(before.cpus) if before.cpus is not None else None,
        "cpus_end": list(after.cpus) if after.cpus is not None else None,
        "run_s": run / 1e9 if run is not None else None,
        "wait_s": wait / 1e9 if wait is not None else None,
        "wait_share": wait / (run + wait) if run is not None and wait is not None and run + wait > 0 else None,
        "involuntary_switches": after.involuntary - before.involuntary,
        "minor_faults_per_call": (after.minor_faults - before.minor_faults) / max(calls, 1),
        "major_faults": after.major_faults - before.major_faults,
        "steal_share": steal / (wall * cores) if steal is not None else None,
        "others_cores": max(busy - own, 0) / wall if busy is not None else None,
        "busy_source": after.busy_source,
        **({"gpu_start": before.gpu, "gpu_end": after.gpu} if before.gpu is not None else {}),
    }


def summary(blocks: Sequence[dict]) -> dict:
    """A setting's host state over its blocks: the worst and the typical neighbour, waiting and faults."""
    def values(key: str) -> list[float]:
        return [b[key] for b in blocks if b.get(key) is not None]

    def stat(key: str, how: Callable[[list[float]], float]) -> float | None:
        found = values(key)
        return how(found) if found else None

    return {"blocks": len(blocks),
            "others_cores_max": stat("others_cores", max),
            "others_cores_median": stat("others_cores", statistics.median),
            "wait_share_max": stat("wait_share", max), "wait_share_median": stat("wait_share", statistics.median),
            "steal_share_max": stat("steal_share", max),
            "involuntary_switches": int(sum(values("involuntary_switches"))),
            "minor_faults_per_call_median": stat("minor_faults_per_call", statistics.median),
            "major_faults": int(sum(values("major_faults"))),
            "speed_probe_ns_median": stat("speed_probe_ns", statistics.median),
            "cpus": sorted({c for b in blocks for key in ("cpus_start", "cpus_end") for c in (b.get(key) or [])[:1]}),
            "busy_source": next((b["busy_source"] for b in blocks if b.get("busy_source")), None)}


# A block is contended when other processes took at least this many cores' worth of CPU time during it, or when
# this process's runnable threads waited for a CPU at least this share of the time (calibrated in docs/results.md:
# "Host state and contention").
CONTENDED_OTHERS_CORES = 0.5
CONTENDED_WAIT_SHARE = 0.2


def contention(state: dict) -> str | None:
    """Why a block was contended (None when it was not): a neighbour's CPU time or our threads' wait for a CPU."""
    reasons = []
    if (others := state.get("others_cores")) is not None and others >= CONTENDED_OTHERS_CORES:
        reasons.append(f"other processes took {others:.2f} cores")
    if (wait := state.get("wait_share")) is not None and wait >= CONTENDED_WAIT_SHARE:
        reasons.append(f"its threads waited for a CPU {wait:.0%} of the time")
    return "; ".join(reasons) or None


def gpu_clock_reader(device) -> Callable[[], dict | None] | None:
    """A reader of the SM clock and clock-event reasons of a CUDA `device` (vitcnn/nvml.py), None on CPU."""
    if getattr(device, "type", device) != "cuda":
        return None
    import torch

    from vitcnn import fingerprint, nvml

    props = torch.cuda.get_device_properties(device)
    uuid = getattr(props, "uuid", None)
    return nvml.ClockReader(str(uuid) if uuid else None, fingerprint.pci_bus_id(props))


class Recorder:
    """The host state of every timed block of one setting: start() before its timed calls, stop(calls) after."""

    def __init__(self, device) -> None:
        self.gpu = gpu_clock_reader(device)
        self.blocks: list[dict] = []
        self._before: Snapshot | None = None
        self._probe_before = 0

    def start(self) -> None:
        self._probe_before = speed_probe_ns()
        self._before = snapshot(self.gpu)

    def stop(self, calls: int) -> dict:
        state = block_state(self._before, snapshot(self.gpu), calls)
        state["speed_probe_ns"] = (self._probe_before + speed_probe_ns()) / 2  # outside the block's wall time
        state["contended"] = contention(state)
        self.blocks.append(state)
        return state

    def fields(self) -> dict:
        """The setting's run-file fields: the summary of its blocks, and why it was contended (None if never)."""
        reasons = [b["contended"] for b in self.blocks if b.get("contended")]
        return {"host_state": summary(self.blocks),
                "contended": f"{len(reasons)} of {len(self.blocks)} timed block(s): {reasons[0]}" if reasons else None}

    def close(self) -> None:
        if self.gpu is not None and hasattr(self.gpu, "close"):
            self.gpu.close()
