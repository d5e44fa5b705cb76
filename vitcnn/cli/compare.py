"""`vitcnn compare BASE NEW`: two run files, setting by setting; exit 1 on a regression."""

from __future__ import annotations

import argparse

from vitcnn.cli.common import command, error
from vitcnn.gate import rules
from vitcnn.gate.metrics import REGRESSION_LABELS, add_gate_options, options_from
from vitcnn.gate.verdicts import format_table, to_markdown
from vitcnn.options import option_value
from vitcnn.runfile import RunFileError, load_run, write_output

EXIT = (f"Exit 0: no regression; 1: a regression ({', '.join(REGRESSION_LABELS)}; "
        f"missing only without --allow-missing); 2: bad options, unreadable file or fingerprint mismatch.")


def run(args: argparse.Namespace) -> int:
    """Compare two run files; its exit codes are EXIT."""
    try:
        options = options_from(lambda option: option_value(args, option), "--", pytest=False)
        base, new = load_run(args.base), load_run(args.new)
        comparison = rules.compare(base, new, options)  # as the stored gate: the base's saved runs are the unit
    except (ValueError, RunFileError) as exc:  # FingerprintMismatch and RunFileError are ValueErrors too
        return error("compare", str(exc))
    print(format_table(comparison), end="")
    if args.markdown:
        try:
            write_output(args.markdown, to_markdown(comparison))
        except OSError as exc:
            return error("compare", f"cannot write {args.markdown}: {exc.strerror or exc}")
    return 1 if comparison.has_regression else 0


def add_compare(subparsers) -> None:
    p = command(subparsers, "compare", run, "compare two run files; exit 1 on a regression", EXIT)
    p.add_argument("base", help="baseline run JSON")
    p.add_argument("new", help="new run JSON")
    add_gate_options(p.add_argument, "--", pytest=False)
    p.add_argument("--markdown", metavar="FILE", help="also write a Markdown summary (e.g. a GitHub job summary)")
