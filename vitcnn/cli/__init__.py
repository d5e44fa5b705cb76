"""`python -m vitcnn SUBCOMMAND ...`: the suite's command line, one module per subcommand (as asv's `commands/`).

Exit codes: 0 success (and no regression), 1 a regression (`compare`, `ab`) or a failed part (`sweep`, `history`,
`check`), 2 a usage error, an unreadable file or a refused comparison; every error is printed as `vitcnn COMMAND:
error: MESSAGE`. To add a subcommand, write a module whose `add_COMMAND(subparsers)` registers its parser
(common.command: the handler and its help), and list that function in SUBCOMMANDS. Building the parser imports no
torch (tests check it): a module imports what its handler needs when it runs.
"""

from __future__ import annotations

import argparse
import sys

from vitcnn.cli import ab, baseline, bisect, compare, machine, plan, reports, scale
from vitcnn.cli import history as history_commands

SUBCOMMANDS = [compare.add_compare, baseline.add_baseline, reports.add_report, reports.add_check, scale.add_merge,
               scale.add_sweep, ab.add_ab, machine.add_fingerprint, history_commands.add_history,
               history_commands.add_publish, plan.add_plan, bisect.add_bisect]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vitcnn", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns its exit code (argparse's usage errors are 2, --help is 0)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = []
    if argv[:2] == ["history", "run"] and "--" in argv:  # each commit's pytest options (sweep parses its own --)
        argv, passthrough = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    args.passthrough = passthrough
    return int(args.handler(args))
