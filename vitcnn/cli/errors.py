"""The one way every subcommand reports an error."""

from __future__ import annotations

import sys


def error(command: str, message: str) -> int:
    """Print `vitcnn COMMAND: error: MESSAGE` to stderr and return the usage-error exit code."""
    print(f"vitcnn {command}: error: {message}", file=sys.stderr)
    return 2
