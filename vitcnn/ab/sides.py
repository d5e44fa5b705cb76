"""A side of `vitcnn ab`: interpreter, environment, git ref and vitcnn options, as the command line gives them.

Each side's workers are vitcnn/workers/worker.py processes started from the side's checkout
(vitcnn/workers/checkout.py: this project, or a temporary `git worktree` of `--a-ref`/`--b-ref`) by
vitcnn/workers/process.py, which says how they are started and kept from disturbing each other.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass

from vitcnn.options import argparse_options, option_value
from vitcnn.settings import AXES
from vitcnn.workers import SideError
from vitcnn.workers.process import Launch

# A side's options that choose what is measured and how long: the rest (gate, baseline, report, shard) belong to
# a pytest session, not to one side of an A/B.
SIDE_OPTIONS = (*(axis.pytest_option for axis in AXES.values()), "--vitcnn-target-seconds",
                "--vitcnn-warmup-seconds", "--vitcnn-min-rounds", "--vitcnn-max-rounds", "--vitcnn-no-inference-mode",
                "--vitcnn-seed", "--vitcnn-threads", "--vitcnn-malloc", "--vitcnn-device", "--vitcnn-compile-times",
                "--vitcnn-eager-twin")


@dataclass(frozen=True)
class Side(Launch):
    """How to run one side: its name ("A"/"B"), interpreter, env overrides and vitcnn options (Launch), and the git
    ref its workers run from (None: this checkout)."""

    ref: str | None = None

    def axis_overrides(self) -> dict[str, object]:
        """Setting fields this side's options replace, e.g. {"sdpa": "math"} from --vitcnn-sdpa=math."""
        namespace = parse_side_opts(self.opts, self.name)
        overrides = {}
        for axis in AXES.values():
            value = option_value(namespace, axis.pytest_option)
            if value is None:
                continue
            values = [v.strip() for v in value.split(",") if v.strip()]
            if len(values) != 1:
                raise SideError(f"side {self.name}: {axis.pytest_option} must name one value in a side's options "
                                f"(it replaces that field of every setting), got {value!r}")
            try:
                overrides[axis.field] = axis.parse(values[0])
            except ValueError as exc:
                raise SideError(f"side {self.name}: {axis.pytest_option}: {exc}") from None
        return overrides


def parse_env(pairs: list[str], side: str) -> dict[str, str]:
    """NAME=VALUE strings into a dict; a malformed one is a SideError."""
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not name.replace("_", "a").isalnum():
            raise SideError(f"--{side.lower()}-env expects NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def parse_side_opts(opts: tuple[str, ...] | list[str], side: str) -> argparse.Namespace:
    """A side's options, read by the plugin's own option definitions; options outside SIDE_OPTIONS are refused."""
    parser = argparse_options(f"--{side.lower()}-opts")
    try:
        namespace, unknown = parser.parse_known_args(list(opts))
    except (argparse.ArgumentError, SystemExit) as exc:
        raise SideError(f"--{side.lower()}-opts: {exc}") from None
    if unknown:
        raise SideError(f"--{side.lower()}-opts: unknown option(s) {' '.join(unknown)}")
    defaults = parser.parse_args([])
    for action in parser._actions:
        option = max(action.option_strings, key=len) if action.option_strings else None
        if option and option not in SIDE_OPTIONS and option != "-p" and \
                getattr(namespace, action.dest) != getattr(defaults, action.dest):
            raise SideError(f"--{side.lower()}-opts: {option} is not a measurement option of one side; "
                            f"allowed: -p MODULE, {', '.join(SIDE_OPTIONS)}")
    return namespace


def split_opts(text: str | None) -> tuple[str, ...]:
    return tuple(shlex.split(text)) if text else ()
