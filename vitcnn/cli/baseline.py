"""`vitcnn baseline save|show`: stored baselines, one per fingerprint (vitcnn/gate/baseline.py)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from vitcnn.cli.common import command, error, group
from vitcnn.gate import baseline
from vitcnn.runfile import RunFileError, load_run


def save(args: argparse.Namespace) -> int:
    """Exit 0 and print the path; 2 on an unreadable run, a corrupt baseline or a fingerprint mismatch."""
    try:
        path = baseline.save_baseline(load_run(args.run), args.dir, allow_cross_machine=args.allow_cross_machine)
    except (ValueError, OSError) as exc:
        return error("baseline save", str(exc))
    print(path)
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
        print(f"{path.stem}: {run.device_label}; {len(run.results)} settings ({summary})")
        reason = baseline.resave_reason(run)
        if reason:
            resave.append(path.stem)
            print(f"  NEEDS RE-SAVE: {reason}")
    if resave:
        print(f"{len(resave)} baseline(s) need a re-save: {', '.join(resave)}")
    return status


def add_baseline(subparsers) -> None:
    actions = group(subparsers, "baseline", "manage stored baselines")
    save_parser = command(actions, "save", save, "save/merge a run as its fingerprint's baseline (atomic)")
    save_parser.add_argument("run", help="run JSON written by `pytest benchmarks --benchmark-json`")
    save_parser.add_argument("--dir", default=baseline.DEFAULT_DIR, help="baseline directory (default %(default)s)")
    save_parser.add_argument("--allow-cross-machine", action="store_true",
                             help="merge even if the existing baseline's fingerprint differs")
    show_parser = command(actions, "show", show, "list stored baselines")
    show_parser.add_argument("--dir", default=baseline.DEFAULT_DIR, help="baseline directory (default %(default)s)")
