"""`vitcnn ab`: A (base) and B (candidate) measured interleaved in one job (vitcnn/ab); exit 1 on a regression."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from vitcnn.ab.design import METRICS, ABOptions
from vitcnn.ab.sides import Side, parse_env, split_opts
from vitcnn.cli.common import add_axis_options, command, error, selected_settings
from vitcnn.gate.metrics import REGRESSION_LABELS

DEFAULTS = {f.name: f.default for f in fields(ABOptions)}  # the parser's defaults are the session's
EXIT = (f"Exit 0: no regression; 1: a regression ({', '.join(REGRESSION_LABELS)}); "
        f"2: usage error, a side that cannot start, or fingerprints that differ between the sides without different "
        f"interpreters.")


def run(args: argparse.Namespace) -> int:
    """Run an A/B session; its exit codes are EXIT."""
    from vitcnn.ab import driver

    try:
        sides = [Side(name, getattr(args, f"{name.lower()}_python"), parse_env(getattr(args, f"{name.lower()}_env"),
                                                                                name),
                      split_opts(getattr(args, f"{name.lower()}_opts")), getattr(args, f"{name.lower()}_ref"))
                 for name in "AB"]
        for side in sides:
            side.axis_overrides()  # refuses options that are not a side's, before anything starts
        options = ABOptions(
            a=sides[0], b=sides[1], **session_fields(args, session_device(args)),
            markdown=Path(args.markdown) if args.markdown else None, json_path=Path(args.json) if args.json else None,
            out_dir=Path(args.out_dir) if args.out_dir else None)
    except ValueError as exc:  # SideError is a ValueError
        return error("ab", str(exc))
    if not options.settings:
        return error("ab", "no setting selected (the axis options leave nothing valid on this device)")
    return driver.run(options)


def session_fields(args: argparse.Namespace, device_type: str) -> dict:
    """ABOptions' fields from add_session_options' options (a bad value is a ValueError naming the option)."""
    return dict(settings=selected_settings(args, args.profile, device_type), profile=args.profile,
                device=args.device, threads=args.threads, processes=args.processes,
                first=args.first_processes if args.first_processes is not None else args.processes,
                rounds=args.rounds, target_seconds=args.target_seconds, threshold=args.threshold, alpha=args.alpha,
                detect=args.detect, metric=args.metric, instructions_tolerance=args.instructions_tolerance,
                explain=args.explain == "on", explain_calls=args.explain_calls,
                machine_time=args.machine_time == "on",
                fresh_processes=(args.fresh_processes or ("on" if device_type == "cpu" else "off")) == "on")


def session_device(args: argparse.Namespace) -> str:
    """The device the session runs on: --device, else cuda where torch sees one (imports torch)."""
    import torch

    found = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if found not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda, got {found!r}")
    return found


def add_ab(subparsers) -> None:
    p = command(
        subparsers, "ab", run, "measure A (base) and B (candidate) interleaved in one job; exit 1 on a regression",
        "Several worker processes per side time short blocks of each setting in rounds (ABBA BAAB ...), one process "
        "active at a time; a t-test over the processes decides (with --first-processes below --processes, settings "
        "not settled after the first stage get one more fresh process per side, a look per stage). " + EXIT)
    for name in ("a", "b"):
        side = "A (base)" if name == "a" else "B (candidate)"
        p.add_argument(f"--{name}-python", default=sys.executable, metavar="PYTHON",
                       help=f"interpreter of side {side} (default: this one)")
        p.add_argument(f"--{name}-env", action="append", default=[], metavar="NAME=VALUE",
                       help=f"environment override for side {side} (repeatable)")
        p.add_argument(f"--{name}-ref", metavar="GIT_REF",
                       help=f"measure side {side} from this git ref of the project (a temporary worktree)")
        p.add_argument(f"--{name}-opts", metavar="'OPTIONS'",
                       help=f"vitcnn measurement options of side {side}, as pytest takes them; write "
                            f"--{name}-opts='--vitcnn-sdpa=math' (with '=')")
    add_session_options(p)
    p.add_argument("--markdown", metavar="FILE", help="write the verdict table as Markdown (e.g. $GITHUB_STEP_SUMMARY)")
    p.add_argument("--json", metavar="FILE", help="write every block of both sides and the verdicts as JSON")
    p.add_argument("--out-dir", metavar="DIR", help="write each side's run file (a.json, b.json) here")


def add_session_options(p: argparse.ArgumentParser) -> None:
    """What an A/B session measures and how (selection, device, design, statistics, explanation): `vitcnn ab`'s
    options, and each probe's of `vitcnn bisect`."""
    p.add_argument("--profile", default="smoke", help="settings profile (default %(default)s)")
    add_axis_options(p)
    p.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    p.add_argument("--threads", type=int, help="torch CPU threads in each worker (default: torch's choice)")
    p.add_argument("--processes", type=int, default=DEFAULTS["processes"],
                   help="worker processes per side, at most (default %(default)s)")
    p.add_argument("--first-processes", type=int,
                   help="processes per side in the first stage (default: --processes, one look; fewer make a "
                        "sequential design that adds one process per side and stage where unsettled)")
    p.add_argument("--fresh-processes", choices=("on", "off"),
                   help="on: each setting in new processes, forked from one template process per side (a worker "
                        "that had run other settings ran a setting several %% off its twins); off: the same "
                        "processes for every setting (default: on for cpu, off for cuda, where forking has not "
                        "been run yet)")
    p.add_argument("--rounds", type=int, default=DEFAULTS["rounds"],
                   help="rounds per stage; each process times one block per round (default %(default)s)")
    p.add_argument("--target-seconds", type=float, default=DEFAULTS["target_seconds"],
                   help="timed seconds per side and setting in the first stage, split over its blocks "
                        "(default %(default)s)")
    p.add_argument("--threshold", type=float, default=DEFAULTS["threshold"],
                   help="slower only if significant and the estimated slowdown exceeds this (default %(default)s)")
    p.add_argument("--alpha", type=float, default=DEFAULTS["alpha"],
                   help="significance per direction after Benjamini-Hochberg across settings, spent over the looks "
                        "(default %(default)s: a false verdict of either direction in at most 5%% of A/A sessions)")
    p.add_argument("--detect", type=float, default=DEFAULTS["detect"],
                   help="a setting that could not have seen this slowdown (80%% power) is inconclusive, not "
                        "same (default %(default)s)")
    p.add_argument("--machine-time", choices=("on", "off"), default="on" if DEFAULTS["machine_time"] else "off",
                   help="judge each process in machine time: its blocks' times against the speed probe timed "
                        "around them (a fixed pure-Python loop), which takes a slow core out; off: by the clock "
                        "alone (default %(default)s)")
    p.add_argument("--metric", choices=METRICS, default=DEFAULTS["metric"],
                   help="time: interleaved wall time (default); instructions: each setting's instructions per call "
                        "counted under Callgrind on both sides at once, no timing (CPU only, needs valgrind)")
    p.add_argument("--instructions-tolerance", type=float, default=DEFAULTS["instructions_tolerance"],
                   help="--metric instructions: instructions-up beyond this relative growth (default %(default)s)")
    p.add_argument("--explain", choices=("on", "off"), default="on" if DEFAULTS["explain"] else "off",
                   help="after the verdicts, profile each `slower` setting once more per side (torch.profiler, a "
                        "separate pass: timing stays clean) and list the ops that changed most; an instructions-up "
                        "lists the functions whose instructions changed most, from the counted dumps "
                        "(default %(default)s)")
    p.add_argument("--explain-calls", type=int, default=DEFAULTS["explain_calls"],
                   help="calls profiled per side for an explanation (default %(default)s)")
