"""What every subcommand shares: the one error style, the one way a command or a group of them is registered, and
the one way a command takes a selection of settings (a profile narrowed by axis options)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from vitcnn import settings


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


def add_axis_options(parser: argparse.ArgumentParser) -> None:
    """One option per axis of a selection (`--models`, `--res`, ...: settings.AXES), as pytest's `--vitcnn-*`."""
    for axis in settings.AXES.values():
        parser.add_argument(f"--{axis.option}", metavar="A,B,...",
                            help=f"comma-separated override of the profile's {axis.option} axis")


def selected_settings(args: argparse.Namespace, profile: str, device_type: str) -> list[settings.Setting]:
    """The settings `pytest --benchmark-only` would run with `profile` and the axis options on this device; a bad
    value is a ValueError naming this command's option (`--res`, not pytest's `--vitcnn-res`)."""
    try:
        overrides = settings.parse_overrides({axis.name: getattr(args, axis.option) for axis in settings.AXES.values()})
        return settings.select(profile, device_type, overrides)
    except ValueError as exc:
        raise ValueError(str(exc).replace("--vitcnn-", "--")) from None
