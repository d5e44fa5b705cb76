"""Instructions per call, counted under Callgrind: the work one call does, which no neighbour, clock or core moves.

The counting process is a vitcnn worker started under `valgrind --tool=callgrind` with instrumentation and
collection both off (`command`): importing torch, building, compiling and warming up run at valgrind's
uninstrumented speed. `count` then switches instrumentation on for this process (`callgrind_control -i on PID`:
valgrind's own tool, through vgdb), collects over `calls` calls between two client requests (torch's
`_valgrind_toggle` / `_valgrind_toggle_and_dump_stats`, so only those calls count), switches instrumentation off
again and reads the dump's totals. The caller has warmed the call up (lazy initialisation is not counted).

What is counted is the program valgrind's CPU can run: it emulates x86-64 up to AVX2 (no AVX-512, no AMX), so the
counting process is pinned to that build of the same model (`COUNTED_ENV`: ATen's AVX2 kernels, inductor's AVX2
vectorisation and `-march=x86-64-v3`, which would otherwise follow the host CPU into instructions valgrind cannot
decode). The count is therefore of the AVX2 build of the timed graph, not of the AVX-512/AMX kernels the host timed:
it sees a changed graph, an extra op, a lost fusion, a different kernel choice; it cannot see memory bandwidth,
cache misses, the host's own ISA paths or anything on a GPU (docs/instructions.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

OUT_DIR_ENV = "VITCNN_CALLGRIND_DIR"  # set for the counting process: where its dumps go
DUMP_PREFIX = "callgrind.out."
# The environment of a counting process. ATEN_CPU_CAPABILITY also picks inductor's vector ISA; the -march that
# inductor gives the C++ compiler is the host's by default; OMP_WAIT_POLICY=PASSIVE: a thread of a library's own
# pool that waits sleeps instead of spinning; PYTHONHASHSEED: set iteration order, the same in every process.
COUNTED_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "TORCHINDUCTOR_CPP_MARCH": "x86-64-v3", "OMP_NUM_THREADS": "1",
               "OMP_WAIT_POLICY": "PASSIVE", "PYTHONHASHSEED": "0"}
# One thread: callgrind's collection switch (the client request) is per thread, so a second OpenMP thread's work
# would go uncounted (two threads counted 30-40% fewer instructions than one); and the count of one thread is the
# whole call's work, the same on a runner of any core count.
THREADS = 1
DEFAULT_CALLS = 2  # counted calls per setting; the count is their mean (two calls of one process: 0.07% apart)


class CountError(RuntimeError):
    """Counting was asked for where it cannot run (no valgrind, not under callgrind) or a dump could not be read."""


def unavailable_reason() -> str | None:
    """Why instructions cannot be counted on this machine (None: they can)."""
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    if missing:
        return (f"{' and '.join(missing)} not found: install valgrind (Debian/Ubuntu: apt-get install valgrind) "
                f"to count instructions")
    return None


def command(argv: list[str], out_dir: Path) -> list[str]:
    """`argv` (a python command line) run under callgrind, everything off until `count` switches it on."""
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
            f"--callgrind-out-file={Path(out_dir) / DUMP_PREFIX}%p", "--trace-children=no", *argv]


def environment(out_dir: Path) -> dict[str, str]:
    """The environment variables a counting process is started with (on top of the caller's)."""
    return {**COUNTED_ENV, OUT_DIR_ENV: str(out_dir)}


def _out_dir() -> Path:
    where = os.environ.get(OUT_DIR_ENV)
    if not where:
        raise CountError(f"not a counting process: {OUT_DIR_ENV} is not set (start it with instructions.command)")
    return Path(where)


def _instrumentation(on: bool, timeout_s: float = 120.0) -> None:
    """Switch callgrind's instrumentation of this process on or off with `callgrind_control`.

    This process keeps running Python while it waits instead of blocking in waitpid: valgrind answers the request
    (sent through vgdb) between the basic blocks it runs, so vgdb never needs ptrace, which Ubuntu's default
    Yama setting refuses towards a parent process."""
    state = "on" if on else "off"
    process = subprocess.Popen(["callgrind_control", f"--instr={state}", str(os.getpid())],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout_s
    while process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise CountError(f"callgrind_control --instr={state} did not finish in {timeout_s:.0f} s")
    output = process.stdout.read()
    if process.returncode != 0:
        raise CountError(f"callgrind_control --instr={state} failed (is this process under callgrind?): "
                         f"{output.strip()[-500:]}")


def read_totals(path: Path) -> dict[str, int]:
    """Event totals of one callgrind dump, e.g. {"Ir": 211747851}: its `events:` line names them, its `totals:`
    (or older `summary:`) line counts them."""
    events, totals = None, None
    with open(path, errors="replace") as lines:
        for line in lines:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith(("totals:", "summary:")):
                totals = [int(v) for v in line.split()[1:]]
    if events is None or totals is None:
        raise CountError(f"{path}: no events/totals line: not a complete callgrind dump")
    return dict(zip(events, totals))


def count(call: Callable[[], None], calls: int = DEFAULT_CALLS, keep_dump: bool = False) -> dict:
    """Instructions per call of `call`, counted over `calls` calls in this (callgrind) process.

    Returns the fields a result carries: `instructions_per_call` (the mean) and how it was counted; with
    `keep_dump`, also `instructions_dump`, the dump itself (left in place for an explanation's function-level diff:
    vitcnn/explain/functions.py; its owner deletes it).
    """
    import torch

    if calls < 1:
        raise ValueError(f"calls must be >= 1, got {calls}")
    out_dir = _out_dir()
    before = set(out_dir.glob(f"{DUMP_PREFIX}{os.getpid()}*"))
    _instrumentation(True)  # valgrind retranslates what runs next; that costs time, not guest instructions
    try:
        torch._C._valgrind_toggle()
        for _ in range(calls):
            call()
        torch._C._valgrind_toggle_and_dump_stats()
    finally:
        _instrumentation(False)
    dumps = sorted(set(out_dir.glob(f"{DUMP_PREFIX}{os.getpid()}*")) - before, key=lambda p: p.stat().st_mtime)
    if not dumps:
        raise CountError(f"callgrind wrote no dump into {out_dir}")
    totals = read_totals(dumps[-1])
    for dump in dumps[:-1] if keep_dump else dumps:
        dump.unlink()
    kept = {"instructions_dump": str(dumps[-1])} if keep_dump else {}
    return {**kept, "instructions_per_call": totals["Ir"] / calls, "instructions_calls": calls,
            "instructions_source": f"callgrind, torch threads {torch.get_num_threads()}: "
                                   + ", ".join(f"{k}={os.environ.get(k)}" for k in sorted(COUNTED_ENV)
                                               if k != "PYTHONHASHSEED")}
