"""`vitcnn merge` (shard runs into one run file) and `vitcnn sweep` (one pytest shard per GPU or CPU worker at once,
then merge): running a selection across devices (vitcnn/scale)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vitcnn.cli.common import command, error
from vitcnn.runfile import RunFileError
from vitcnn.scale import merge, sweep


def merge_runs(args: argparse.Namespace) -> int:
    """Exit 0: merged; 2: unreadable input, shards that do not fit together, or OUT exists (without --force)."""
    try:
        merged = merge.merge_files(args.runs, args.output, force=args.force, partial=args.partial)
    except FileExistsError:
        return error("merge", f"{args.output} exists; pass --force to replace it")
    except (RunFileError, merge.MergeError, OSError) as exc:
        return error("merge", str(exc))
    shards = merged["vitcnn"]["shards"]
    missing = f"; MISSING shard(s) {', '.join(map(str, shards['missing']))}" if shards["missing"] else ""
    print(f"vitcnn merge: wrote {args.output}: {len(merged['vitcnn']['settings'])} settings from "
          f"{len(shards['merged'])} of {shards['count']} shards{missing}")
    return 0


def add_merge(subparsers) -> None:
    p = command(subparsers, "merge", merge_runs, "merge the shard runs of one sweep into one run file",
                (merge.__doc__ or "").split("\n\n")[0] + "\n\n" + (merge_runs.__doc__ or ""))
    p.add_argument("runs", nargs="+", metavar="SHARD.json", help="run files written with --vitcnn-shard")
    p.add_argument("-o", "--output", required=True, metavar="OUT.json", help="the merged run file (must not exist)")
    p.add_argument("--force", action="store_true", help="replace OUT.json if it exists")
    p.add_argument("--partial", action="store_true",
                   help="merge even if shards are missing (they are named in the output; the gate sees their "
                        "settings as missing)")


def sweep_shards(args: argparse.Namespace) -> int:
    """Exit 0: every shard passed; 1: a shard failed (the rest is merged); 2: usage error or nothing merged."""
    pytest_args = list(args.pytest_args)
    if pytest_args[:1] == ["--"]:
        pytest_args = pytest_args[1:]
    output = Path(args.output)
    shard_dir = Path(args.shard_dir) if args.shard_dir else output.with_name(output.stem + ".shards")
    try:
        jobs = sweep.plan(pytest_args or ["benchmarks", "--benchmark-only"], shard_dir.resolve(),
                    gpus=args.gpus, workers=args.workers)
        sweep.check_outputs(jobs, output, args.force)
    except sweep.SweepError as exc:
        return error("sweep", str(exc))
    return sweep.run(jobs, output, force=args.force)


def add_sweep(subparsers) -> None:
    p = command(
        subparsers, "sweep", sweep_shards, "run one pytest shard per GPU (or CPU worker) at once and merge their runs",
        (sweep.__doc__ or "").split("\n\n")[1] + "\n\n" + (sweep_shards.__doc__ or ""),
        usage="python -m vitcnn sweep [-h] (--gpus N | --workers N) -o OUT.json [--shard-dir DIR] [--force] "
              "-- [PYTEST ARGS]")
    devices = p.add_mutually_exclusive_group(required=True)
    devices.add_argument("--gpus", type=int, metavar="N", help="one shard per GPU (CUDA_VISIBLE_DEVICES)")
    devices.add_argument("--workers", type=int, metavar="N",
                         help="CPU: N shards at once, cores split between them (they compete: not for timing)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.json", help="the merged run file")
    p.add_argument("--shard-dir", metavar="DIR", help="where shard runs and logs go (default: OUT.shards/)")
    p.add_argument("--force", action="store_true", help="replace OUT.json and shard files that exist")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, metavar="-- PYTEST ARGS",
                   help="passed to each pytest (default: benchmarks --benchmark-only)")
