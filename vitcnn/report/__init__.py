"""Turn vitcnn runs into an answer: a claims check, best-setting and full tables (report.md), and figures.

Data flows one way: run files -> Run (vitcnn.runfile) -> per-device merged results and best settings (best.py)
-> claims (claims.py) and figure plans (metrics.py), computed once per report (analysis.py) -> report.md
(markdown.py) and PNG figures (figures.py, the only module that imports matplotlib, lazily, so that
`import vitcnn.report` works without it). The `report` command line is in vitcnn/cli.py.

pr_comment.py stands apart: the merge of a pull request's sticky comment, run by .github/workflows/pr-comment.yml
from a bare checkout, so this package must keep importing with the standard library alone (no numpy, no torch).
"""

from __future__ import annotations

from pathlib import Path

from vitcnn.report import figures, markdown
from vitcnn.report.analysis import DeviceAnalysis, analyse
from vitcnn.runfile import Run

REPORT_NAME = "report.md"

__all__ = ["REPORT_NAME", "DeviceAnalysis", "analyse", "report_markdown", "write_report"]


def report_markdown(runs: list[Run], figure_error: str | None = None) -> str:
    """The whole report.md of `runs` (see markdown.render)."""
    return markdown.render(analyse(runs), figure_error)


def write_report(runs: list[Run], out_dir: Path) -> Path:
    """Write figures and report.md into out_dir; returns report.md's path. Without matplotlib, report.md says so."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    analyses = analyse(runs)
    figure_error = None
    try:
        figures.make_figures(analyses, out_dir)
    except ImportError as exc:
        figure_error = f"matplotlib is not available ({exc}); install the 'plot' extra"
    path = out_dir / REPORT_NAME
    path.write_text(markdown.render(analyses, figure_error))
    return path
