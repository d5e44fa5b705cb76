"""The end-of-run terminal table: one row per setting with the numbers a reader looks at first."""

from __future__ import annotations

from vitcnn.measure import Outcome

COLUMNS = ("setting", "status", "median ms", "img/s", "TFLOP/s", "MFU", "act MiB", "sdpa")


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _row(setting_id: str, record: dict, outcome: Outcome | None) -> tuple[str, ...]:
    info = outcome.info if outcome else {}
    if record["status"] != "ok":
        return (setting_id, record["status"], *["-"] * (len(COLUMNS) - 3), (record["reason"] or "")[:60])
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
    )


def summary_table(records: dict[str, dict], outcomes: dict[str, Outcome]) -> str:
    """Fixed-width table; MFU is against the spec peak, or '(mm)' against the measured matmul when no spec."""
    rows = [COLUMNS] + [_row(sid, rec, outcomes.get(sid)) for sid, rec in records.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
