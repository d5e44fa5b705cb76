"""The end-of-run terminal table: one row per setting with the numbers a reader looks at first."""

from __future__ import annotations

import os

from vitcnn.measure import Outcome

COLUMNS = ("setting", "status", "median ms", "img/s", "TFLOP/s", "MFU", "act MiB", "sdpa", "note")


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _row(setting_id: str, record: dict, outcome: Outcome | None) -> tuple[str, ...]:
    info = outcome.info if outcome else {}
    if record["status"] != "ok":
        return (setting_id, record["status"], *["-"] * (len(COLUMNS) - 3), (record["reason"] or "")[:80])
    mfu = info.get("mfu_spec") if info.get("mfu_spec") is not None else info.get("mfu_matmul")
    mfu_text = "-" if mfu is None else f"{mfu:.1%}{'' if info.get('mfu_spec') is not None else ' (mm)'}"
    act = info.get("activation_peak_bytes")
    return (
        setting_id, "ok",
        _fmt(info["median_s"] * 1e3 if info.get("median_s") else None, ".3f"),
        _fmt(info.get("images_per_s"), ".1f"),
        _fmt(info.get("tflops_per_s"), ".2f"),
        mfu_text,
        _fmt(act / 2**20 if act is not None else None, ".1f"),
        info.get("sdpa_backend_used", "-"),
        "",
    )


def busy_host_warning(outcomes: dict[str, Outcome], cpu_count: int | None = None) -> str | None:
    """A warning when the 1-minute load average exceeded the core count while settings were timed: other
    processes were competing for the CPU (on a CPU run even a second benchmark can slow it many times over)."""
    cpu_count = cpu_count or os.cpu_count() or 1
    busy = [sid for sid, o in outcomes.items() if (o.info.get("host_load_1m") or 0) > cpu_count]
    if not busy:
        return None
    worst = max(outcomes[sid].info["host_load_1m"] for sid in busy)
    return (f"warning: host load average reached {worst:.1f} on {cpu_count} cores while {len(busy)} setting(s) "
            f"were timed; other processes may have slowed them (see extra_info.host_load_1m)")


def summary_table(records: dict[str, dict], outcomes: dict[str, Outcome]) -> str:
    """Fixed-width table; MFU is against the spec peak, or '(mm)' against the measured matmul when no spec;
    `note` says why a setting has no numbers."""
    rows = [COLUMNS] + [_row(sid, rec, outcomes.get(sid)) for sid, rec in records.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths).rstrip())
    warning = busy_host_warning(outcomes)
    return "\n".join(lines + ([warning] if warning else []))
