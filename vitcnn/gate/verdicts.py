"""The gate's verdicts as tables: fixed-width for a terminal, Markdown for a pull request's job summary."""

from __future__ import annotations

from vitcnn import table
from vitcnn.gate.comparison import Comparison, SettingVerdict
from vitcnn.gate.metrics import INSTRUCTIONS, MEMORY

HEADER = ["setting", "verdict", "base ms", "new ms", "ratio", "p", "detectable", MEMORY.column, "detail"]
NUMERIC = (2, 3, 4, 5, 6, 7)  # right-aligned in Markdown; the terminal leaves the memory column left-aligned
TERMINAL_NUMERIC = (2, 3, 4, 5, 6)


def _time_cell(seconds: float | None, status: str | None) -> str:
    """A median in ms, or the status when the setting did not run (absent: '-')."""
    if status is None:
        return "-"
    return table.ms(seconds) if status == "ok" else status


def _memory_cell(v: SettingVerdict) -> str:
    if v.base_memory_bytes is None and v.new_memory_bytes is None:
        return "-"
    return f"{table.mib(v.base_memory_bytes)}→{table.mib(v.new_memory_bytes)}"


def _ci_cell(v: SettingVerdict) -> str:
    if v.ci_low is None or v.ci_high is None:
        return "-"
    return f"{table.fixed(v.ci_low, '.3f')}–{table.fixed(v.ci_high, '.3f')}"


def _detectable_cell(v: SettingVerdict) -> str:
    if v.detectable is None:
        return "-"
    return "unbounded" if v.detectable == float("inf") else f"{v.detectable:.1%}"


def _row(v: SettingVerdict, comparison: Comparison, markdown: bool, ci: bool = False) -> list[str]:
    """One setting's cells. A terminal marks a regression with '!'; Markdown sets the id as code and bolds the
    regression labels. The A/B tables (`ci`) add the ratio's confidence interval after the ratio; every table
    gives the slowdown its speed rule could have detected after the p-value."""
    if markdown:
        regression = comparison.options.regression_labels
        setting = f"`{v.id}`"
        verdict = ", ".join(f"**{label}**" if label in regression else label for label in v.labels)
    else:
        setting, verdict = v.id, ",".join(v.labels) + (" !" if v.regression else "")
    return [setting, verdict, _time_cell(v.base_median_s, v.base_status), _time_cell(v.new_median_s, v.new_status),
            table.fixed(v.ratio, ".3f"), *([_ci_cell(v)] if ci else []), table.fixed(v.p_value, ".2g"),
            _detectable_cell(v), _memory_cell(v), v.detail]


def format_table(comparison: Comparison) -> str:
    """The summary line, then a fixed-width table for a terminal; regressions are marked with '!'."""
    lines = [comparison.summary(), *comparison.notes]
    if comparison.cross_machine:
        lines += [f"  fingerprint {k}: base={a!r} new={b!r}" for k, (a, b) in comparison.differences.items()]
    rows = [_row(v, comparison, markdown=False) for v in comparison.verdicts]
    return "\n".join([*lines, table.text(HEADER, rows, right=TERMINAL_NUMERIC)]) + "\n"


def to_markdown(comparison: Comparison) -> str:
    """The summary line, then a Markdown table (e.g. for $GITHUB_STEP_SUMMARY); regression labels are bold."""
    lines = [table.cell(comparison.summary()), ""]
    lines += [f"> {note}" for note in comparison.notes] + ([""] if comparison.notes else [])
    if comparison.cross_machine:
        lines += ["> **Cross-machine comparison**: the fingerprints differ, so these numbers are not comparable.", ""]
        lines += [f"> - `{k}`: base `{a!r}`, new `{b!r}`" for k, (a, b) in comparison.differences.items()] + [""]
    rows = [_row(v, comparison, markdown=True) for v in comparison.verdicts]
    return "\n".join(lines) + "\n" + table.markdown(HEADER, rows, right=NUMERIC) + "\n"


# -------------------------------------------------------------------------------------------- interleaved A/B

PAIRED_HEADER = ["setting", "verdict", "A ms", "B ms", "B/A", "CI", "p adj", "detectable", MEMORY.column, "detail"]
PAIRED_NUMERIC = (2, 3, 4, 5, 6, 7)


def format_paired_table(comparison: Comparison) -> str:
    """An A/B session's verdicts for a terminal: B/A ratio, its CI and the adjusted p; regressions marked '!'."""
    rows = [_row(v, comparison, markdown=False, ci=True) for v in comparison.verdicts]
    lines = [comparison.summary(), *comparison.notes]
    return "\n".join([*lines, table.text(PAIRED_HEADER, rows, right=PAIRED_NUMERIC[:-1])]) + "\n"


def paired_markdown(comparison: Comparison) -> str:
    """An A/B session's verdicts as Markdown (e.g. for $GITHUB_STEP_SUMMARY); regression labels are bold."""
    lines = ["### vitcnn ab: B (candidate) against A (base), interleaved", "", table.cell(comparison.summary()), ""]
    lines += [f"> {note}" for note in comparison.notes] + ([""] if comparison.notes else [])
    rows = [_row(v, comparison, markdown=True, ci=True) for v in comparison.verdicts]
    return "\n".join(lines) + "\n" + table.markdown(PAIRED_HEADER, rows, right=PAIRED_NUMERIC) + "\n"


# ------------------------------------------------------------------------------------ A/B by instruction counts

COUNTED_HEADER = ["setting", "verdict", f"A {INSTRUCTIONS.column}", f"B {INSTRUCTIONS.column}", "B/A", "detail"]
COUNTED_NUMERIC = (2, 3, 4)


def _instructions_cell(count: float | None, status: str | None) -> str:
    if status is None:
        return "-"
    return (f"{count / 1e6:,.2f}" if count is not None else "-") if status == "ok" else status


def _counted_row(v: SettingVerdict, comparison: Comparison, markdown: bool) -> list[str]:
    setting, verdict = _row(v, comparison, markdown)[:2]
    return [setting, verdict, _instructions_cell(v.base_instructions, v.base_status),
            _instructions_cell(v.new_instructions, v.new_status), table.fixed(v.ratio, ".4f"), v.detail]


def format_counted_table(comparison: Comparison) -> str:
    """An A/B by instruction counts for a terminal: both counts per call and B/A; regressions marked '!'."""
    rows = [_counted_row(v, comparison, markdown=False) for v in comparison.verdicts]
    lines = [comparison.summary(), *comparison.notes]
    return "\n".join([*lines, table.text(COUNTED_HEADER, rows, right=COUNTED_NUMERIC)]) + "\n"


def counted_markdown(comparison: Comparison) -> str:
    """An A/B by instruction counts as Markdown (e.g. for $GITHUB_STEP_SUMMARY); regression labels are bold."""
    lines = ["### vitcnn ab: B (candidate) against A (base), instructions per call (Callgrind)", "",
             table.cell(comparison.summary()), ""]
    lines += [f"> {note}" for note in comparison.notes] + ([""] if comparison.notes else [])
    rows = [_counted_row(v, comparison, markdown=True) for v in comparison.verdicts]
    return "\n".join(lines) + "\n" + table.markdown(COUNTED_HEADER, rows, right=COUNTED_NUMERIC) + "\n"
