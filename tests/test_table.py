"""The one table renderer: fixed-width and Markdown tables, escaping and number formats."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vitcnn import table


def test_text_table_pads_all_but_the_last_column_and_rules_the_header():
    text = table.text(["name", "ms", "note"], [["a", "1.5", "long free text"], ["bbbb", "12.25", ""]], right=(1,))
    assert text.splitlines() == [
        "name     ms  note",
        "-----------------",
        "a       1.5  long free text",
        "bbbb  12.25",
    ]


def test_markdown_table_escapes_cells_and_aligns():
    md = table.markdown(["a", "b"], [["x | y", None], ["two\nlines", 3]], right=(1,))
    assert md.splitlines() == ["| a | b |", "|---|---:|", "| x \\| y | — |", "| two lines | 3 |"]


def test_number_formats():
    assert table.ms(0.0123456) == "12.346" and table.ms(None) == "-" and table.ms(0.0123456, ".3g") == "12.3"
    assert table.mib(3 * table.MIB) == "3.0" and table.mib(None, missing="n/a") == "n/a"
    assert table.fixed(0.5, ".2f") == "0.50" and table.fixed(None, ".2f") == "-"
    assert [table.num(v) for v in (1234.5, 12.34, 1.234, 0.01234, None, float("nan"))] == [
        "1,234", "12.3", "1.23", "0.012", "—", "—"]


@given(st.lists(st.lists(st.text(alphabet="ab |\n-", max_size=6), min_size=3, max_size=3), max_size=5))
def test_markdown_rows_always_have_the_header_column_count(rows):
    lines = table.markdown(["x", "y", "z"], rows).splitlines()
    assert len(lines) == 2 + len(rows)
    for line in lines:
        assert line.replace("\\|", "").count("|") == 4  # escaped pipes never split a cell
