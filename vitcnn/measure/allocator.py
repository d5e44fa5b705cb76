"""glibc malloc's two thresholds, fixed so that a timed call reuses memory its process has touched before.

By default glibc serves an allocation above its *mmap threshold* with fresh pages from the kernel and gives a freed
heap top back above its *trim threshold*, and it moves the mmap threshold as the process frees such chunks. A
forward pass that allocates and frees the same tensors every call then takes a page fault for every 4 KiB it
touches anew, and how many depends on the allocation history of that one process. On the 2-core AMD EPYC VM
(docs/results.md, "Page faults"), an eager NF-Net test model at 128 px took 0 to 2,368 minor faults per call in
otherwise identical processes, and each process's speed followed its count (9.2 ms at 0, 11.7 ms at 1,504,
13.0 ms at 2,368) for its whole life, while the core's speed probe stayed flat: the process-to-process offsets of
issue 37 on that VM. Fixing both thresholds (mallopt: an explicit value also stops the threshold from moving)
brings steady-state faults to 0 per call.

What it may hide: a change that makes glibc's default policy fault more (larger temporaries, another allocation
order) is a cost users of a default glibc pay and these timings do not show. `--vitcnn-malloc default` measures
with glibc's own policy; `vitcnn ab --b-opts=--vitcnn-malloc=default` compares the two. Allocations above 32 MiB
(glibc's largest mmap threshold on 64-bit) still map fresh pages every call. Another allocator preloaded with
LD_PRELOAD (jemalloc, tcmalloc) or a libc other than glibc is left as it is, and the run records which.
"""

from __future__ import annotations

import ctypes
import os
import platform

MODES = ("fixed", "default")
M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # the largest glibc accepts on 64-bit (HEAP_MAX_SIZE / 2); above it mallopt refuses
TRIM_THRESHOLD = 2 ** 31 - 1  # mallopt takes an int: never give a freed heap top back below 2 GiB
PRELOADED = ("jemalloc", "tcmalloc", "mimalloc", "hoard")

FIXED = f"glibc, thresholds fixed (mmap {MMAP_THRESHOLD >> 20} MiB, trim {TRIM_THRESHOLD >> 20} MiB)"
DEFAULT = "glibc default (moving mmap threshold, trim at 128 KiB)"

_condition: str | None = None  # what apply() left this process with; None: never called


def _preloaded() -> str | None:
    """Another allocator preloaded into this process (its LD_PRELOAD entry), or None."""
    for entry in os.environ.get("LD_PRELOAD", "").replace(":", " ").split():
        if any(name in os.path.basename(entry) for name in PRELOADED):
            return entry
    return None


def apply(mode: str = "fixed") -> str:
    """Set this process's malloc policy (`fixed` or `default`) and return the condition it runs under, as runs
    record it. `default` leaves glibc alone; it cannot undo an earlier `fixed` in the same process (glibc's
    threshold stops moving once set), so that case says so."""
    global _condition
    if mode not in MODES:
        raise ValueError(f"--vitcnn-malloc must be one of {', '.join(MODES)}, got {mode!r}")
    preloaded = _preloaded()
    libc = platform.libc_ver()[0]
    if preloaded:
        _condition = f"preloaded {os.path.basename(preloaded)} (not changed)"
    elif libc != "glibc":
        _condition = f"{libc or platform.system()} libc (not changed)"
    elif mode == "default":
        _condition = DEFAULT if _condition in (None, DEFAULT) else f"{FIXED}; default asked for after it was set"
    else:
        mallopt = ctypes.CDLL(None).mallopt
        if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1 or mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
            _condition = "glibc, mallopt refused the thresholds (default policy)"
        else:
            _condition = FIXED
    return _condition


def condition() -> str | None:
    """The malloc condition this process runs under, as apply() left it (None if it was never called)."""
    return _condition
