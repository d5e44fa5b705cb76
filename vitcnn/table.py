"""The one table renderer and the number formats of every vitcnn table (terminal and Markdown).

The terminal table (summary.py), the gate's verdict tables (verdicts.py) and the report's Markdown tables
(report/markdown.py) all render here, so a cell is escaped one way and a millisecond is written one way. A small
local module rather than a dependency such as `tabulate`: the two layouts needed are a few lines each, and the
committed report.md must stay byte-stable across library releases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MIB = 2**20
DASH = "—"  # a Markdown cell with no value


def fixed(value: float | None, spec: str, missing: str = "-") -> str:
    """`value` in format `spec` (e.g. ".3f"), or `missing` when there is none."""
    return missing if value is None else format(value, spec)


def ms(seconds: float | None, spec: str = ".3f", missing: str = "-") -> str:
    """Seconds written as milliseconds (no unit: a column header or the caller says "ms")."""
    return fixed(None if seconds is None else seconds * 1e3, spec, missing)


def mib(nbytes: float | None, spec: str = ".1f", missing: str = "-") -> str:
    """Bytes written as MiB (no unit)."""
    return fixed(None if nbytes is None else nbytes / MIB, spec, missing)


def times(ratio: float | None, missing: str | None = "-") -> str | None:
    """A ratio written as a factor ("1.35x"): speedup over eager."""
    return missing if ratio is None else f"{ratio:.2f}x"


def num(value: float | None) -> str:
    """A number with as many digits as its size deserves (1,234 / 12.3 / 1.23 / 0.012); DASH when unknown."""
    if value is None or not math.isfinite(value):
        return DASH
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1:
        return f"{value:.2f}"
    return f"{value:.2g}"


def cell(value) -> str:
    """A Markdown table cell: one line, no raw pipes; None is DASH."""
    text = DASH if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def markdown(header: Sequence[str], rows: Sequence[Sequence], right: Sequence[int] = ()) -> str:
    """A GitHub Markdown table; columns whose index is in `right` are right-aligned."""
    rule = "|" + "".join("---:|" if i in right else "---|" for i in range(len(header)))
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", rule]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """A fixed-width table for a terminal: columns two spaces apart, a rule under the header. The last column
    is never padded (it holds free text such as a reason), and columns in `right` are right-aligned."""
    padded = len(header) - 1
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(padded)]

    def line(row: Sequence[str]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join([*cells, row[-1]])

    head = line(header)
    return "\n".join([head.rstrip(), "-" * len(head)] + [line(row).rstrip() for row in rows])
