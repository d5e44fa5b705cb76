"""`vitcnn baseline save|record|show`: stored baselines, one per fingerprint (vitcnn/gate/baseline.py)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from vitcnn.cli.common import command, error, group
from vitcnn.gate import baseline, stored
from vitcnn.runfile import RunFileError, load_run


def save(args: argparse.Namespace) -> int:
    """Save each run file as one saved run of its fingerprint's baseline, in the order given (the gate judges speed
    by saved runs: three or more, docs/gating.md). Exit 0 and print the path; 2 on an unreadable run, a corrupt
    baseline or a fingerprint mismatch (the runs before it stay saved)."""
    for run in args.runs:
        try:
            path = baseline.save_baseline(load_run(run), args.dir, allow_cross_machine=args.allow_cross_machine)
        except (ValueError, OSError) as exc:
            return error("baseline save", f"{run}: {exc}")
        print(path)
    return 0


def record(args: argparse.Namespace) -> int:
    """Run the benchmarks `--runs` times, each in a fresh pytest process, and save each run to the baseline of
    this machine: a CI job sets a baseline up in one step. Arguments after `--` go to pytest (a selection, a
    profile). Exit 0 when every run was saved; otherwise pytest's exit code (the runs before it stay saved)."""
    if args.runs < 1:
        return error("baseline record", f"--runs must be >= 1, got {args.runs}")
    pytest_args = [a for a in args.pytest_args if a != "--"]
    with tempfile.TemporaryDirectory(prefix="vitcnn-record-") as scratch:
        for k in range(1, args.runs + 1):
            json_path = Path(scratch) / f"run-{k}.json"
            command_line = [sys.executable, "-m", "pytest", "--benchmark-only", "--benchmark-json", str(json_path),
                            "--vitcnn-save-baseline", "--vitcnn-baseline-dir", args.dir, *pytest_args]
            print(f"vitcnn baseline record: run {k} of {args.runs}: {' '.join(command_line[1:])}", flush=True)
            done = subprocess.run(command_line, check=False)
            if done.returncode != 0:
                print(f"vitcnn baseline record: run {k} failed (pytest exit {done.returncode}); "
                      f"{k - 1} run(s) saved", file=sys.stderr)
                return done.returncode
    print(f"vitcnn baseline record: {args.runs} run(s) saved to {args.dir}")
    return 0


def show(args: argparse.Namespace) -> int:
    """List stored baselines: slug, device, status counts, and those that need a re-save (an identity of the first
    format). Exit 2 if any is unreadable."""
    paths = sorted(Path(args.dir).glob("*.json"))
    if not paths:
        print(f"no baselines in {args.dir}")
        return 0
    status, resave = 0, []
    for path in paths:
        try:
            run = load_run(path)
        except RunFileError as exc:
            print(f"{path.stem}: UNREADABLE ({exc})", file=sys.stderr)
            status = 2
            continue
        counts = Counter(r.status for r in run.results.values())
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        saves = len(stored.saved_runs(run))
        print(f"{path.stem}: {run.device_label}; {len(run.results)} settings ({summary}); {saves} saved run(s)")
        reason = baseline.resave_reason(run)
        if reason:
            resave.append(path.stem)
            print(f"  NEEDS RE-SAVE: {reason}")
    if resave:
        print(f"{len(resave)} baseline(s) need a re-save: {', '.join(resave)}")
    return status


def add_baseline(subparsers) -> None:
    actions = group(subparsers, "baseline", "manage stored baselines")
    save_parser = command(actions, "save", save, "save/merge runs as their fingerprint's baseline (atomic)")
    save_parser.add_argument("runs", nargs="+", metavar="RUN",
                             help="run JSON written by `pytest --benchmark-only --benchmark-json`; each one saved run")
    save_parser.add_argument("--dir", default=baseline.DEFAULT_DIR, help="baseline directory (default %(default)s)")
    save_parser.add_argument("--allow-cross-machine", action="store_true",
                             help="merge even if the existing baseline's fingerprint differs")
    record_parser = command(actions, "record", record, "run the benchmarks N times and save each run")
    record_parser.add_argument("--runs", type=int, default=3, help="fresh pytest processes (default %(default)s)")
    record_parser.add_argument("--dir", default=baseline.DEFAULT_DIR, help="baseline directory (default %(default)s)")
    record_parser.add_argument("pytest_args", nargs=argparse.REMAINDER, metavar="-- PYTEST_ARGS",
                               help="passed to each pytest run (a selection, a profile)")
    show_parser = command(actions, "show", show, "list stored baselines")
    show_parser.add_argument("--dir", default=baseline.DEFAULT_DIR, help="baseline directory (default %(default)s)")
