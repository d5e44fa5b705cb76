"""The sticky pull request comment (vitcnn/report/pr_comment.py): sections merge into one comment without touching
each other, whatever their text holds, and the comment stays under GitHub's limit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitcnn.report import pr_comment as pc

REPO = Path(__file__).resolve().parents[2]
SHA = "0123456789abcdef0123456789abcdef01234567"
RUN = "https://github.com/o/r/actions/runs/42"
NAMES = list(pc.SECTIONS)

MARKERS = [pc.COMMENT_MARKER, "<!--", "-->",
           *(f"<!-- vitcnn-section:{n}:{e} -->" for n in NAMES for e in ("start", "end"))]
# Text that is mostly harmless, sometimes a marker or a line break, and sometimes far too long for the comment.
pieces = st.one_of(st.text(max_size=30), st.sampled_from(MARKERS), st.sampled_from(["\n", "\r\n", "\r", "|"]))
bodies = st.one_of(
    st.lists(pieces, max_size=12).map("".join),
    st.builds(lambda chunk, n: chunk * n, st.text(min_size=1, max_size=40), st.integers(500, 4000)),
)
names = st.sampled_from(NAMES)
# A comment as GitHub may hand it back: ours after some merges, or none, or someone else's text.
comments = st.one_of(
    st.none(), st.text(max_size=50),
    st.lists(st.tuples(names, bodies), max_size=4).map(
        lambda merges: _merge_all(None, merges)),
)
fast = settings(max_examples=40, deadline=None)


def _merge_all(comment: str | None, merges: list[tuple[str, str]]) -> str | None:
    for name, body in merges:
        comment = pc.merge(comment, name, body)
    return comment


@fast
@given(comments, names, bodies)
def test_merging_a_section_twice_is_merging_it_once(existing, name, body):
    once = pc.merge(existing, name, body)
    assert pc.merge(once, name, body) == once


@fast
@given(comments, names, bodies)
def test_the_other_sections_are_untouched(existing, name, body):
    before = pc.sections(existing)
    after = pc.sections(pc.merge(existing, name, body))
    assert {k: v for k, v in after.items() if k != name} == {k: v for k, v in before.items() if k != name}
    assert after[name] == pc.prepare(body)


@fast
@given(comments, st.lists(st.tuples(names, bodies), min_size=2, max_size=4, unique_by=lambda m: m[0]))
def test_the_order_of_sections_is_fixed_whichever_run_finishes_first(existing, merges):
    forward = _merge_all(existing, merges)
    assert _merge_all(existing, merges[::-1]) == forward
    shown = [name for name in NAMES if f"<!-- vitcnn-section:{name}:start -->" in forward]
    assert list(pc.sections(forward)) == shown


@fast
@given(comments, names, bodies)
def test_the_comment_stays_under_githubs_limit(existing, name, body):
    merged = pc.merge(existing, name, body, RUN)
    assert len(merged) <= pc.size(merged) < pc.COMMENT_LIMIT


@fast
@given(comments, names, st.lists(pieces | st.sampled_from(MARKERS), max_size=20).map("".join))
def test_marker_text_in_a_body_cannot_break_the_structure(existing, name, body):
    merged = pc.merge(existing, name, body)
    found = pc.sections(merged)
    assert set(found) == set(pc.sections(existing)) | {name}
    assert merged.count(pc.COMMENT_MARKER) == 1
    for other in NAMES:  # each section's markers exactly once, or not at all
        starts = merged.count(f"<!-- vitcnn-section:{other}:start -->")
        assert starts == merged.count(f"<!-- vitcnn-section:{other}:end -->") == (other in found)
    assert "<!--" not in found[name]


def test_a_long_table_is_cut_at_a_line_with_a_note_and_the_run():
    table = "\n".join(f"| setting-{i} | same | 1.00 |" for i in range(5000))
    text = pc.merge(None, "gpu", table, RUN)
    kept = pc.sections(text)["gpu"]
    assert pc.size(kept) <= pc.SECTION_LIMIT
    assert kept.endswith(f"the whole table is in the run's job summary and log: {RUN})_")
    body_lines = kept.split("\n\n_(truncated")[0].splitlines()
    assert body_lines == table.splitlines()[:len(body_lines)]  # whole rows only


def test_an_existing_comment_that_is_not_ours_is_replaced():
    assert pc.sections("Looks good to me <!-- vitcnn-section:ab:start -->\nx\n<!-- vitcnn-section:ab:end -->") == {}
    assert pc.merge("LGTM", "ab", "table") == pc.merge(None, "ab", "table")


def test_an_unknown_section_is_refused():
    with pytest.raises(ValueError, match="unknown section"):
        pc.merge(None, "evil", "x")


def test_a_section_says_its_commit_and_its_run():
    text = pc.section_text("ab", SHA, RUN, "| a | b |\n")
    assert text.startswith(f"**{pc.SECTIONS['ab']}**, measured on `0123456`")
    assert f"([run]({RUN}))" in text and text.endswith("| a | b |")
    merged = pc.section_text("gpu", SHA, RUN, "t", measured="fedcba9876543210")
    assert "measured on `fedcba9` (head `0123456` merged into the base branch)" in merged


@pytest.mark.parametrize("table", [None, "", "  \n"])
def test_a_job_that_wrote_no_table_says_so_and_where_its_log_is(table):
    text = pc.section_text("gpu", SHA, RUN, table, conclusion="failure")
    assert text.endswith(f"no verdict table (the run's conclusion: failure): see the run log {RUN}")


def test_the_command_line_merges_into_an_existing_comment(tmp_path: Path):
    existing, out = tmp_path / "comment.md", tmp_path / "new.md"
    existing.write_text(pc.merge(None, "gpu", "gpu table"))
    (tmp_path / "ab.md").write_text("ab table\n")
    base = ["--sha", SHA, "--run-url", RUN, "--out", str(out)]
    assert pc.main(["--section", "ab", "--body", str(tmp_path / "ab.md"), "--existing", str(existing), *base]) == 0
    found = pc.sections(out.read_text())
    assert found["gpu"] == "gpu table" and found["ab"].endswith("ab table")
    # a job that failed before writing its table, and no comment yet (an empty file, as the workflow writes)
    existing.write_text("")
    assert pc.main(["--section", "instructions", "--body", str(tmp_path / "none.md"), "--existing", str(existing),
                    "--conclusion", "failure", *base]) == 0
    assert list(pc.sections(out.read_text())) == ["instructions"]
    assert "no verdict table" in out.read_text()


@pytest.mark.parametrize("bad", [["--sha", "main; rm -rf /"], ["--run-url", "javascript:alert(1)"],
                                 ["--section", "evil"], ["--conclusion", "x y"]])
def test_the_command_line_refuses_what_it_cannot_trust(tmp_path: Path, bad: list[str]):
    args = {"--section": "ab", "--sha": SHA, "--run-url": RUN, "--body": str(tmp_path / "b"),
            "--out": str(tmp_path / "o")}
    args[bad[0]] = bad[1]
    with pytest.raises(SystemExit) as exc:
        pc.main([x for kv in args.items() for x in kv])
    assert exc.value.code != 0
    assert not (tmp_path / "o").exists()


def test_it_runs_from_a_bare_checkout_on_the_standard_library_alone(tmp_path: Path):
    """pr-comment.yml runs `PYTHONPATH=. python3 -m vitcnn.report.pr_comment` with nothing installed: with -S (no
    site-packages) the module and the package it sits in must still import."""
    (tmp_path / "ab.md").write_text("table")
    done = subprocess.run([sys.executable, "-S", "-m", "vitcnn.report.pr_comment", "--section", "ab", "--body",
                           str(tmp_path / "ab.md"), "--out", str(tmp_path / "new.md"), "--sha", SHA, "--run-url", RUN],
                          cwd=REPO, env={**os.environ, "PYTHONPATH": "."}, capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert pc.sections((tmp_path / "new.md").read_text())["ab"].endswith("table")
