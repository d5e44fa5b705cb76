"""`python -m vitcnn report|compare|baseline|merge|sweep ...`: the suite's command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from vitcnn import baseline, merge, report, sweep

    parser = argparse.ArgumentParser(prog="python -m vitcnn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    baseline.add_cli(commands)
    report.add_cli(commands)
    merge.add_parser(commands)
    sweep.add_parser(commands)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
