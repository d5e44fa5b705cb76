"""What every subcommand shares: the one error style, and the one way a command or a group of them is registered."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def error(command: str, message: str) -> int:
    """Print `vitcnn COMMAND: error: MESSAGE` to stderr and return the usage-error exit code."""
    print(f"vitcnn {command}: error: {message}", file=sys.stderr)
    return 2


def command(subparsers, name: str, handler: Callable[[argparse.Namespace], int], help: str,
            description: str | None = None, **kwargs) -> argparse.ArgumentParser:
    """A (sub)command's parser that runs `handler`; its description is the handler's docstring unless given."""
    parser = subparsers.add_parser(name, help=help, description=description or handler.__doc__, **kwargs)
    parser.set_defaults(handler=handler)
    return parser


def group(subparsers, name: str, help: str):
    """A command whose actions are subcommands of their own (`vitcnn history add ...`)."""
    return subparsers.add_parser(name, help=help).add_subparsers(dest="action", required=True)
