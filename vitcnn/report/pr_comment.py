"""The one sticky comment of a pull request: the verdict tables of its benchmark jobs, one section each.

The jobs that measure a pull request run its code with a read-only token, so each only uploads its section as an
artifact; .github/workflows/pr-comment.yml, which may write, merges the sections into the comment with this module.
That workflow runs it from the default branch with `PYTHONPATH=.` and nothing installed: standard library only.

A section's text comes from the pull request's own run, so it is untrusted: it is kept from opening an HTML
comment (which could forge or hide a marker, or swallow the rest of the comment), and each section is capped so
that the whole comment stays under GitHub's limit whatever the others hold.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

COMMENT_MARKER = "<!-- vitcnn-pr-comment -->"
HEADER = f"{COMMENT_MARKER}\n### vitcnn benchmarks of this pull request\n"
# Each section's name (its artifact is pr-comment-<name>) and title, in the order the comment shows them: a fixed
# order, so the comment depends on which sections it holds, never on which run finished first.
SECTIONS = {
    "ab": "A/B on a hosted CPU runner, wall time (smoke profile)",
    "instructions": "A/B on a hosted CPU runner, instructions per call under Callgrind (smoke profile, 64 px)",
    "gpu": "GPU gate against the committed baseline",
}
# GitHub refuses a comment body longer than this. Sizes here are UTF-8 bytes, never fewer than characters, so the
# limit holds however GitHub counts.
COMMENT_LIMIT = 65_536
# A section file larger than this is not read whole (it comes from the pull request's run).
READ_LIMIT = 1_000_000

_SECTION = re.compile(r"<!-- vitcnn-section:([a-z]+):start -->\n(.*?)\n<!-- vitcnn-section:\1:end -->", re.DOTALL)
_SHA = re.compile(r"[0-9a-f]{7,40}")
_URL = re.compile(r"https://[^\s<>()\[\]]{1,500}")
_CONCLUSION = re.compile(r"[a-z_]{1,30}")


def size(text: str) -> int:
    """Text's size as the limit counts it (UTF-8 bytes)."""
    return len(text.encode("utf-8"))


def render(sections: dict[str, str]) -> str:
    """The whole comment holding `sections` (name -> prepared text), in SECTIONS order."""
    return HEADER + "".join(f"\n<!-- vitcnn-section:{name}:start -->\n{sections[name]}\n"
                            f"<!-- vitcnn-section:{name}:end -->\n" for name in SECTIONS if name in sections)


# Every section at most this big keeps the comment, with all of them and its markers, under COMMENT_LIMIT.
SECTION_LIMIT = (COMMENT_LIMIT - 1 - size(render(dict.fromkeys(SECTIONS, "")))) // len(SECTIONS)


def neutralise(text: str) -> str:
    """`text` unable to open an HTML comment: `<!--` is written `&lt;!--` (GitHub shows it as typed), so no marker
    can appear inside a section and no stray comment opener can hide the rest of the comment."""
    return text.replace("<!--", "&lt;!--")


def fit(text: str, limit: int = SECTION_LIMIT, run_url: str | None = None) -> str:
    """`text` cut at a line end to at most `limit` bytes, with a note saying where the whole of it is."""
    if size(text) <= limit:
        return text
    where = f"the run's job summary and log: {run_url}" if run_url and size(run_url) < limit // 4 else "the run's log"
    note = neutralise(f"\n\n_(truncated to fit GitHub's comment limit; the whole table is in {where})_")
    head = text.encode("utf-8")[:max(limit - size(note), 0)].decode("utf-8", "ignore")
    cut = head.rfind("\n")
    return (head[:cut] if cut > 0 else head) + note


def prepare(body: str, run_url: str | None = None) -> str:
    """A section's text as the comment holds it: one newline convention (GitHub stores \\n), no blank lines around
    it, neutralised and fitted. Preparing prepared text changes nothing, so re-merging a section is a no-op."""
    text = body.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    return fit(neutralise(text), SECTION_LIMIT, run_url)


def sections(comment: str | None) -> dict[str, str]:
    """The known sections of an existing comment (empty unless it is ours, i.e. holds COMMENT_MARKER)."""
    if not comment or COMMENT_MARKER not in comment:
        return {}
    comment = comment.replace("\r\n", "\n").replace("\r", "\n")
    return {m[1]: m[2] for m in _SECTION.finditer(comment) if m[1] in SECTIONS}


def merge(existing: str | None, section: str, body: str, run_url: str | None = None) -> str:
    """The comment `existing` with `section` replaced by `body` (or added), every other section kept as it is.

    Only text between a section's own markers is replaced, so runs of different workflows (the A/B jobs, the GPU
    gate) each update their part of one comment; anything else in `existing` is dropped."""
    if section not in SECTIONS:
        raise ValueError(f"unknown section {section!r} (known: {', '.join(SECTIONS)})")
    found = {name: prepare(text) for name, text in sections(existing).items()}
    found[section] = prepare(body, run_url)
    return render(found)


def section_text(section: str, sha: str, run_url: str, table: str | None, measured: str | None = None,
                 conclusion: str | None = None) -> str:
    """A section: its title and the commit it measured (a reader must know which push a table is about), then the
    job's table, or, when the job ended before writing one, that it did and where its log is."""
    commit = f"`{sha[:7]}`"
    if measured and measured != sha:  # the GPU gate measures GitHub's merge of the head into the base branch
        commit = f"`{measured[:7]}` (head `{sha[:7]}` merged into the base branch)"
    title = f"**{SECTIONS[section]}**, measured on {commit}"
    if table is not None and table.strip():
        return f"{title} ([run]({run_url})):\n\n{table.strip()}"
    ended = f" (the run's conclusion: {conclusion})" if conclusion else ""
    return f"{title}: no verdict table{ended}: see the run log {run_url}"


def _read(path: Path | None) -> str | None:
    """A file's text (at most READ_LIMIT bytes), or None when there is none."""
    if path is None or not path.is_file():
        return None
    with path.open("rb") as f:
        return f.read(READ_LIMIT).decode("utf-8", "replace")


def _checked(pattern: re.Pattern, value: str | None, what: str) -> str | None:
    value = (value or "").strip()
    if value and not pattern.fullmatch(value):
        raise SystemExit(f"pr_comment: {what} {value[:80]!r} is not valid")
    return value or None


def main(argv: list[str] | None = None) -> int:
    """`python -m vitcnn.report.pr_comment --section ab --body ab.md --existing old.md --out new.md --sha SHA
    --run-url URL`: write the comment with this section merged in (a missing --body file says there is no table)."""
    p = argparse.ArgumentParser(prog="python -m vitcnn.report.pr_comment", description=__doc__.splitlines()[0])
    p.add_argument("--section", required=True, choices=list(SECTIONS))
    p.add_argument("--body", type=Path, required=True, help="the job's Markdown (may be missing: no table)")
    p.add_argument("--existing", type=Path, help="the comment as it is now (missing or empty: a new comment)")
    p.add_argument("--out", type=Path, required=True, help="where the merged comment is written")
    p.add_argument("--sha", required=True, help="the pull request's head commit the run was for")
    p.add_argument("--measured", help="the commit the job measured, when not the head (e.g. a merge commit)")
    p.add_argument("--run-url", required=True, help="the run, for its log")
    p.add_argument("--conclusion", help="the run's conclusion (success, failure, cancelled, ...)")
    args = p.parse_args(argv)
    sha = _checked(_SHA, args.sha, "--sha")
    if sha is None:
        p.error("--sha is empty")
    measured = _checked(_SHA, args.measured, "--measured")
    run_url = _checked(_URL, args.run_url, "--run-url") or ""
    conclusion = _checked(_CONCLUSION, args.conclusion, "--conclusion")
    text = section_text(args.section, sha, run_url, _read(args.body), measured, conclusion)
    args.out.write_text(merge(_read(args.existing), args.section, text, run_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
