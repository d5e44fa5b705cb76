"""The end-of-run terminal table: one row per setting of the session's Run, with the numbers a reader looks at first.

It reads the same runfile.Run the gate, the baseline store and the report get, so every place shows one median.
"""

from __future__ import annotations

import os

from vitcnn import table
from vitcnn.gate.metrics import GRAPH_BREAKS, RECOMPILES
from vitcnn.runfile import Result, Run

COLUMNS = ("setting", "status", "median ms", "img/s", "TFLOP/s", "MFU", "act MiB", "vs eager", "sdpa", "note")
NOTE_LIMIT = 80
SUSPECT = " !"  # marks a FLOP-based number whose count has an error (the note says which)


def _mfu_cell(result: Result) -> str:
    """MFU against the datasheet peak, or '(mm)' against the measured matmul when no datasheet peak is known."""
    spec, matmul = result.mfu("spec"), result.mfu("matmul")
    if spec is not None:
        return f"{spec:.1%}"
    return "-" if matmul is None else f"{matmul:.1%} (mm)"


def _row(result: Result) -> list[str]:
    if result.status != "ok":
        return [result.id, result.status, *["-"] * (len(COLUMNS) - 3), (result.reason or "")[:NOTE_LIMIT]]
    tflops, mfu = table.fixed(result.tflops_per_s, ".2f"), _mfu_cell(result)
    notes = [f"{n} {metric.noun}" for metric in (GRAPH_BREAKS, RECOMPILES) if (n := result.get(metric.field))]
    if result.get("contended"):  # a busy neighbour during the timing (measure/host.py): the time is not comparable
        notes.insert(0, f"CONTENDED: {result.get('contended')}")
    if result.flops_error:
        notes.append(f"FLOP count incomplete: {result.flops_error}")
        tflops, mfu = tflops + SUSPECT, mfu + SUSPECT
    note = "; ".join(notes)[:NOTE_LIMIT]
    return [result.id, "ok", table.ms(result.median_s), table.fixed(result.images_per_s, ".1f"), tflops, mfu,
            table.mib(result.activation_peak_bytes), table.times(result.get("speedup_vs_eager")),
            result.get("sdpa_backend_used", "-"), note]


def busy_host_warning(run: Run, cpu_count: int | None = None) -> str | None:
    """A warning when the 1-minute load average exceeded the core count while settings were timed: other
    processes were competing for the CPU (on a CPU run even a second benchmark can slow it many times over)."""
    cpu_count = cpu_count or os.cpu_count() or 1
    loads = {sid: r.get("host_load_1m") or 0 for sid, r in run.results.items()}
    busy = [load for load in loads.values() if load > cpu_count]
    if not busy:
        return None
    return (f"warning: host load average reached {max(busy):.1f} on {cpu_count} cores while {len(busy)} setting(s) "
            f"were timed; other processes may have slowed them (see extra_info.host_load_1m)")


def summary_table(run: Run, cpu_count: int | None = None) -> str:
    """Fixed-width table of every setting; `note` says why a setting has no numbers, or that its FLOP count
    has an error (its TFLOP/s and MFU are then marked '!')."""
    text = table.text(COLUMNS, [_row(r) for r in run.results.values()])
    warning = busy_host_warning(run, cpu_count)
    return text + ("\n" + warning if warning else "")
