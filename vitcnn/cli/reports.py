"""`vitcnn report` (tables, figures and the claims check of runs) and `vitcnn check` (what would be wrong with a
run): both read run files and say what they show."""

from __future__ import annotations

import argparse
from pathlib import Path

from vitcnn.cli.common import command, error
from vitcnn.runfile import Run, RunFileError, load_run


def _runs(args: argparse.Namespace, name: str) -> list[Run] | int:
    """The run files of the command line, or the usage-error exit code when one cannot be read."""
    try:
        return [load_run(path) for path in args.runs]
    except RunFileError as exc:
        return error(name, str(exc))


def report(args: argparse.Namespace) -> int:
    """Exit 0 on success, 2 when a run file cannot be read or is not a vitcnn run."""
    from vitcnn.report import write_report

    runs = _runs(args, "report")
    if isinstance(runs, int):
        return runs
    path = write_report(runs, args.out)
    if args.summary is not None:
        with open(args.summary, "a") as summary:
            summary.write(path.read_text())
    print(f"vitcnn report: wrote {path}")
    return 0


def add_report(subparsers) -> None:
    parser = command(subparsers, "report", report, "tables, figures and the claims check for one or more runs",
                     "Write DIR/report.md (claims check, best settings, all settings) and PNG figures. Runs of the "
                     "same machine are merged (a later file wins for the same setting).")
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN.json", help="run files (pytest-benchmark JSON)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    parser.add_argument("--summary", type=Path, metavar="FILE",
                        help="also append the Markdown to FILE (e.g. $GITHUB_STEP_SUMMARY)")


def check(args: argparse.Namespace) -> int:
    """Exit 0: nothing suspicious; 1: a check fired (see the lines it printed); 2: a run file cannot be read."""
    from vitcnn.report import sanity

    runs = _runs(args, "check")
    if isinstance(runs, int):
        return runs
    fired = False
    for run in runs:
        found = sanity.findings(run, cold=args.cold)
        print(sanity.render(run, found))
        fired = fired or bool(found)
    return 1 if fired else 0


def add_check(subparsers) -> None:
    from vitcnn.report import sanity

    p = command(subparsers, "check", check, "what would be wrong with a run: kernels, GPU busy, MFU, memory, caches",
                (sanity.__doc__ or "").split("\n\n")[0] + "\n\n" + (check.__doc__ or ""))
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN.json", help="run files (pytest-benchmark JSON)")
    p.add_argument("--cold", action="store_true",
                   help="the run started with empty compile caches (a fresh machine): any cache hit is suspect")
