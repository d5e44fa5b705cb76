"""`python -m vitcnn SUBCOMMAND ...`: every command of the suite's command line, one function each.

Exit codes: 0 success (and no regression), 1 a regression (`compare`), 2 a usage error, an unreadable file or a
refused comparison. To add a subcommand, write `add_NAME(subparsers)` that registers its parser with
`set_defaults(handler=...)` and append it to SUBCOMMANDS.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from vitcnn.gate import baseline, rules
from vitcnn.runfile import RunFileError, load_run
from vitcnn.scale import merge, sweep
from vitcnn.table import MIB


def error(message: str, prog: str = "error") -> int:
    """Print `message` to stderr and return the usage-error exit code."""
    print(f"{prog}: {message}", file=sys.stderr)
    return 2


# ----------------------------------------------------------------------------------------------------- compare


def cmd_compare(args: argparse.Namespace) -> int:
    """Exit 0: no regression; 1: regression; 2: bad options, unreadable file or fingerprint mismatch."""
    from vitcnn.gate.verdicts import format_table, to_markdown

    try:
        options = rules.GateOptions(
            tolerance=args.tolerance, alpha=args.alpha, memory_rel_tolerance=args.memory_tolerance,
            memory_abs_tolerance=int(args.memory_abs_mib * MIB), allow_missing=args.allow_missing,
            allow_cross_machine=args.allow_cross_machine, instructions_tolerance=args.instructions_tolerance)
        base, new = load_run(args.base), load_run(args.new)
        # As the stored gate: a CPU's speed is judged from the base's saved runs (one run file is one of them)
        comparison = rules.compare(base, new, options, speed_needs_history=new.fingerprint.get("device") != "cuda")
    except (ValueError, RunFileError) as exc:  # FingerprintMismatch and RunFileError are ValueErrors too
        return error(str(exc))
    print(format_table(comparison), end="")
    if args.markdown:
        try:
            Path(args.markdown).write_text(to_markdown(comparison))
        except OSError as exc:
            return error(f"cannot write {args.markdown}: {exc.strerror or exc}")
    return 1 if comparison.has_regression else 0


def add_compare(subparsers) -> None:
    defaults = rules.GateOptions()
    p = subparsers.add_parser("compare", help="compare two run files; exit 1 on a regression",
                              description=cmd_compare.__doc__)
    p.add_argument("base", help="baseline run JSON")
    p.add_argument("new", help="new run JSON")
    p.add_argument("--tolerance", type=float, default=defaults.tolerance,
                   help="speed: flag only if the median is slower by more than this fraction (default %(default)s)")
    p.add_argument("--alpha", type=float, default=defaults.alpha,
                   help="significance level of the one-sided Mann-Whitney U test (default %(default)s)")
    p.add_argument("--memory-tolerance", type=float, default=defaults.memory_rel_tolerance,
                   help="relative activation-memory growth allowed (default %(default)s)")
    p.add_argument("--memory-abs-mib", type=float, default=defaults.memory_abs_tolerance / MIB,
                   help="absolute activation-memory growth allowed in MiB (default %(default)s)")
    p.add_argument("--instructions-tolerance", type=float, default=defaults.instructions_tolerance,
                   help="relative growth of a call's instruction count allowed, where both runs counted them "
                        "(default %(default)s)")
    p.add_argument("--allow-missing", action="store_true", help="settings absent from the new run are no regression")
    p.add_argument("--allow-cross-machine", action="store_true",
                   help="compare runs of different fingerprints anyway (numbers are not comparable)")
    p.add_argument("--markdown", metavar="FILE", help="also write a Markdown summary (e.g. a GitHub job summary)")
    p.set_defaults(handler=cmd_compare)


# ---------------------------------------------------------------------------------------------------- baseline


def cmd_baseline_save(args: argparse.Namespace) -> int:
    """Exit 0 and print the path; 2 on an unreadable run, a corrupt baseline or a fingerprint mismatch."""
    try:
        path = baseline.save_baseline(load_run(args.run), args.dir, allow_cross_machine=args.allow_cross_machine)
    except (ValueError, OSError) as exc:
        return error(str(exc))
    print(path)
    return 0


def cmd_baseline_show(args: argparse.Namespace) -> int:
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
    b = subparsers.add_parser("baseline", help="manage stored baselines")
    actions = b.add_subparsers(dest="action", required=True)
    save = actions.add_parser("save", help="save/merge a run as its fingerprint's baseline (atomic)",
                              description=cmd_baseline_save.__doc__)
    save.add_argument("run", help="run JSON written by `pytest benchmarks --benchmark-json`")
    save.add_argument("--dir", default=baseline.DEFAULT_DIR, help="baseline directory (default %(default)s)")
    save.add_argument("--allow-cross-machine", action="store_true",
                      help="merge even if the existing baseline's fingerprint differs")
    save.set_defaults(handler=cmd_baseline_save)
    show = actions.add_parser("show", help="list stored baselines", description=cmd_baseline_show.__doc__)
    show.add_argument("--dir", default=baseline.DEFAULT_DIR, help="baseline directory (default %(default)s)")
    show.set_defaults(handler=cmd_baseline_show)


# ------------------------------------------------------------------------------------------------------ report


def cmd_report(args: argparse.Namespace) -> int:
    """Exit 0 on success, 2 when a run file cannot be read or is not a vitcnn run."""
    from vitcnn.report import write_report

    try:
        runs = [load_run(path) for path in args.runs]
    except RunFileError as exc:
        return error(f"error: {exc}", "vitcnn report")
    path = write_report(runs, args.out)
    if args.summary is not None:
        with open(args.summary, "a") as summary:
            summary.write(path.read_text())
    print(f"vitcnn report: wrote {path}")
    return 0


def add_report(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="tables, figures and the claims check for one or more runs",
        description="Write DIR/report.md (claims check, best settings, all settings) and PNG figures. "
                    "Runs of the same machine are merged (a later file wins for the same setting).")
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN.json", help="run files (pytest-benchmark JSON)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    parser.add_argument("--summary", type=Path, metavar="FILE",
                        help="also append the Markdown to FILE (e.g. $GITHUB_STEP_SUMMARY)")
    parser.set_defaults(handler=cmd_report)


# ------------------------------------------------------------------------------------------------------- check


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0: nothing suspicious; 1: a check fired (see the lines it printed); 2: a run file cannot be read."""
    from vitcnn.report import sanity

    try:
        runs = [load_run(path) for path in args.runs]
    except RunFileError as exc:
        return error(f"error: {exc}", "vitcnn check")
    fired = False
    for run in runs:
        found = sanity.findings(run, cold=args.cold)
        print(sanity.render(run, found))
        fired = fired or bool(found)
    return 1 if fired else 0


def add_check(subparsers) -> None:
    from vitcnn.report import sanity

    p = subparsers.add_parser("check", help="what would be wrong with a run: kernels, GPU busy, MFU, memory, caches",
                              description=(sanity.__doc__ or "").split("\n\n")[0] + "\n\n" + (cmd_check.__doc__ or ""))
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN.json", help="run files (pytest-benchmark JSON)")
    p.add_argument("--cold", action="store_true",
                   help="the run started with empty compile caches (a fresh machine): any cache hit is suspect")
    p.set_defaults(handler=cmd_check)


# -------------------------------------------------------------------------------------------------------- main

# ------------------------------------------------------------------------------------------------------- merge


def cmd_merge(args: argparse.Namespace) -> int:
    """Exit 0: merged; 2: unreadable input, shards that do not fit together, or OUT exists (without --force)."""
    try:
        merged = merge.merge_files(args.runs, args.output, force=args.force, partial=args.partial)
    except FileExistsError:
        print(f"vitcnn merge: error: {args.output} exists; pass --force to replace it", file=sys.stderr)
        return 2
    except (RunFileError, merge.MergeError, OSError) as exc:
        print(f"vitcnn merge: error: {exc}", file=sys.stderr)
        return 2
    shards = merged["vitcnn"]["shards"]
    missing = f"; MISSING shard(s) {', '.join(map(str, shards['missing']))}" if shards["missing"] else ""
    print(f"vitcnn merge: wrote {args.output}: {len(merged['vitcnn']['settings'])} settings from "
          f"{len(shards['merged'])} of {shards['count']} shards{missing}")
    return 0


def add_merge(subparsers) -> None:
    p = subparsers.add_parser("merge", help="merge the shard runs of one sweep into one run file",
                              description=(merge.__doc__ or "").split("\n\n")[0] + "\n\n" + (cmd_merge.__doc__ or ""))
    p.add_argument("runs", nargs="+", metavar="SHARD.json", help="run files written with --vitcnn-shard")
    p.add_argument("-o", "--output", required=True, metavar="OUT.json", help="the merged run file (must not exist)")
    p.add_argument("--force", action="store_true", help="replace OUT.json if it exists")
    p.add_argument("--partial", action="store_true",
                   help="merge even if shards are missing (they are named in the output; the gate sees their "
                        "settings as missing)")
    p.set_defaults(handler=cmd_merge)


# ------------------------------------------------------------------------------------------------------- sweep


def cmd_sweep(args: argparse.Namespace) -> int:
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
        print(f"vitcnn sweep: error: {exc}", file=sys.stderr)
        return 2
    return sweep.run(jobs, output, force=args.force)


def add_sweep(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="run one pytest shard per GPU (or CPU worker) at once and merge their runs",
        description=(sweep.__doc__ or "").split("\n\n")[1] + "\n\n" + (cmd_sweep.__doc__ or ""),
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
    p.set_defaults(handler=cmd_sweep)


# ---------------------------------------------------------------------------------------------------------- ab

AB_AXES = {"--models": "--vitcnn-models", "--res": "--vitcnn-res", "--batch": "--vitcnn-batch",
           "--precision": "--vitcnn-precision", "--sdpa": "--vitcnn-sdpa", "--compile": "--vitcnn-compile",
           "--layout": "--vitcnn-layout", "--task": "--vitcnn-task"}


def _ab_settings(args: argparse.Namespace, device_type: str) -> list:
    """The settings `pytest --benchmark-only` would run with the same profile and axis options on this device."""
    import pytest

    from vitcnn import plugin, settings
    from vitcnn.options import AXIS_OPTIONS

    overrides = {}
    for option, plugin_option in AB_AXES.items():
        value = getattr(args, option[2:])
        if value:
            axis, parse = AXIS_OPTIONS[plugin_option]
            overrides[axis] = plugin._split(value, parse)
    try:
        plugin._check_axes(args.profile, overrides)
        return settings.profile_settings(args.profile, device_type, **overrides)
    except (ValueError, pytest.UsageError) as exc:
        raise ValueError(str(exc).replace("--vitcnn-", "--")) from None


def cmd_ab(args: argparse.Namespace) -> int:
    """Exit 0: no regression; 1: a regression (slower, memory-up, now-oom, now-error, missing); 2: usage error, a
    side that cannot start, or fingerprints that differ between the sides without different interpreters."""
    from vitcnn.ab import driver, sides

    if not 2 <= args.first_processes <= args.processes:
        return error("need 2 <= --first-processes <= --processes: a side's spread between processes needs two",
                     "vitcnn ab")
    if args.rounds < 2:
        return error("--rounds must be >= 2", "vitcnn ab")
    if not 0 < args.alpha < 1 or not args.threshold >= 0 or not args.detect > 0:
        return error("--alpha must be in (0, 1), --threshold >= 0 and --detect > 0", "vitcnn ab")
    if not args.instructions_tolerance >= 0:
        return error("--instructions-tolerance must be >= 0", "vitcnn ab")
    try:
        import torch

        device_type = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device_type not in ("cpu", "cuda"):
            raise ValueError(f"--device must be cpu or cuda, got {device_type!r}")
        chosen = _ab_settings(args, device_type)
        ab_sides = [sides.Side(name, getattr(args, f"{name.lower()}_python"),
                               sides.parse_env(getattr(args, f"{name.lower()}_env"), name),
                               getattr(args, f"{name.lower()}_ref"),
                               sides.split_opts(getattr(args, f"{name.lower()}_opts"))) for name in "AB"]
        for side in ab_sides:
            side.axis_overrides()  # refuses options that are not a side's, before anything starts
    except ValueError as exc:  # SideError is a ValueError
        return error(str(exc), "vitcnn ab")
    if not chosen:
        return error("no setting selected (the axis options leave nothing valid on this device)", "vitcnn ab")
    options = driver.ABOptions(
        a=ab_sides[0], b=ab_sides[1], settings=chosen, profile=args.profile, device=args.device,
        threads=args.threads, processes=args.processes, first=args.first_processes, rounds=args.rounds,
        threshold=args.threshold, alpha=args.alpha, detect=args.detect,
        markdown=Path(args.markdown) if args.markdown else None, json_path=Path(args.json) if args.json else None,
        out_dir=Path(args.out_dir) if args.out_dir else None, metric=args.metric,
        instructions_tolerance=args.instructions_tolerance)
    return driver.run(options)


def driver_defaults():
    """ABOptions' defaults (imported late: the driver pulls in the measuring stack)."""
    from vitcnn.ab.driver import ABOptions
    from vitcnn.ab.sides import Side

    return ABOptions(Side("A"), Side("B"), [], "smoke")


def add_ab(subparsers) -> None:
    p = subparsers.add_parser(
        "ab", help="measure A (base) and B (candidate) interleaved in one job; exit 1 on a regression",
        description="Several worker processes per side time short blocks of each setting in rounds (ABBA BAAB "
                    "...), one process active at a time; a t-test over the processes decides, and settings that "
                    "are not settled after the first stage get one more fresh process per side. "
                    + (cmd_ab.__doc__ or ""))
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
    p.add_argument("--profile", default="smoke", help="settings profile (default %(default)s)")
    for option in AB_AXES:
        p.add_argument(option, metavar="A,B,...", help=f"comma-separated override of the profile's {option[2:]} axis")
    p.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    p.add_argument("--threads", type=int, help="torch CPU threads in each worker (default: torch's choice)")
    defaults = driver_defaults()
    p.add_argument("--processes", type=int, default=defaults.processes,
                   help="worker processes per side, at most (default %(default)s)")
    p.add_argument("--first-processes", type=int, default=defaults.first,
                   help="processes per side in the first stage (default %(default)s)")
    p.add_argument("--rounds", type=int, default=defaults.rounds,
                   help="rounds per stage; each process times one block per round (default %(default)s)")
    p.add_argument("--threshold", type=float, default=defaults.threshold,
                   help="slower only if significant and the estimated slowdown exceeds this (default %(default)s)")
    p.add_argument("--alpha", type=float, default=defaults.alpha,
                   help="significance after Benjamini-Hochberg across settings, spent over the looks "
                        "(default %(default)s)")
    p.add_argument("--detect", type=float, default=defaults.detect,
                   help="a setting that could not have seen this slowdown (80%% power) is inconclusive, not "
                        "same (default %(default)s)")
    p.add_argument("--metric", choices=("time", "instructions"), default=defaults.metric,
                   help="time: interleaved wall time (default); instructions: each setting's instructions per call "
                        "counted under Callgrind on both sides at once, no timing (CPU only, needs valgrind)")
    p.add_argument("--instructions-tolerance", type=float, default=defaults.instructions_tolerance,
                   help="--metric instructions: instructions-up beyond this relative growth (default %(default)s)")
    p.add_argument("--markdown", metavar="FILE", help="write the verdict table as Markdown (e.g. $GITHUB_STEP_SUMMARY)")
    p.add_argument("--json", metavar="FILE", help="write every block of both sides and the verdicts as JSON")
    p.add_argument("--out-dir", metavar="DIR", help="write each side's run file (a.json, b.json) here")
    p.set_defaults(handler=cmd_ab)


# ------------------------------------------------------------------------------------------------- fingerprint


def cmd_fingerprint(args: argparse.Namespace) -> int:
    """Exit 0 and print this machine's fingerprint as JSON (or its slug: the key of its baselines, compile cache and
    history series, e.g. for a CI cache key); 2 when the device is not there."""
    import json

    import torch

    from vitcnn import fingerprint

    if args.device == "cuda" and not torch.cuda.is_available():
        return error("--device cuda asked for, but torch sees no CUDA device", "fingerprint")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    fp = fingerprint.collect(device)
    print(fingerprint.slug(fp) if args.slug else json.dumps(fp, indent=2, sort_keys=True))
    return 0


def add_fingerprint(subparsers) -> None:
    p = subparsers.add_parser("fingerprint", help="this machine's fingerprint (or slug), as a run would record it",
                              description=cmd_fingerprint.__doc__)
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available, else cpu")
    p.add_argument("--slug", action="store_true", help="print only the slug")
    p.set_defaults(handler=cmd_fingerprint)


# ----------------------------------------------------------------------------------------------------- history


def cmd_history_add(args: argparse.Namespace) -> int:
    """Exit 0 when every file was added or already stored; 2 when one was refused or the store is damaged."""
    from vitcnn.history.store import HistoryStore, StoreError

    try:
        store = HistoryStore(args.store, create=True)
        outcomes = store.add(args.runs)
    except (StoreError, OSError) as exc:
        return error(str(exc), "history add")
    for outcome in outcomes:
        print(f"{outcome.outcome:8} {outcome.source}" + (f" ({outcome.key})" if outcome.key else "")
              + (f": {outcome.reason}" if outcome.reason else ""))
    if not outcomes:
        return error(f"no run files in {' '.join(args.runs)}", "history add")
    return 2 if any(o.outcome == "refused" for o in outcomes) else 0


def cmd_history_run(args: argparse.Namespace) -> int:
    """Exit 0 when every commit was measured or skipped with a reason; 1 when one failed; 2 on a bad range or
    store."""
    from vitcnn.history import backfill
    from vitcnn.history.store import HistoryStore, StoreError

    pytest_args = list(args.passthrough)
    if args.profile:
        pytest_args = [f"--vitcnn-profile={args.profile}", *pytest_args]
    try:
        store = HistoryStore(args.store, create=True)
        out_dir = Path(args.out_dir) if args.out_dir else backfill.temporary_out_dir()
        done = backfill.backfill(store, args.commits, out_dir, pytest_args, every=args.every,
                                 skip_stored=(args.profile or "") if args.skip_stored else None,
                                 warm_cache=args.warm_cache)
    except (StoreError, backfill.BackfillError, OSError) as exc:
        return error(str(exc), "history run")
    counts = Counter(m.outcome for m in done)
    print(f"{len(done)} commit(s): " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
          + f"; run files and logs in {out_dir}")
    return 1 if counts.get("failed") else 0


def cmd_history_check(args: argparse.Namespace) -> int:
    """Exit 0: no series ends in a regression; 1: some series does (its newest level is more than the tolerance
    above the level before its latest regression change point); 2: unreadable store or bad options."""
    from vitcnn.history import check, series
    from vitcnn.history.store import HistoryStore, StoreError

    try:
        store = HistoryStore(args.store)
        found = check.findings(_series(store, args, series), args.tolerance)
    except StoreError as exc:
        return error(str(exc), "history check")
    print(check.render(found), end="")
    if args.markdown:
        try:
            Path(args.markdown).write_text(check.render(found, markdown=True))
        except OSError as exc:
            return error(f"cannot write {args.markdown}: {exc.strerror or exc}", "history check")
    failing = [f for f in found if f.fails]
    print(f"{len(found)} change point(s), {len(failing)} series ending in a regression")
    return 1 if failing else 0


def _series(store, args: argparse.Namespace, series_module) -> list:
    metrics = args.metric or list(series_module.METRICS)
    built = series_module.build(((e.key, run) for e, run in store.runs()), metrics)
    return [s for s in built if not args.machine or s.machine in args.machine]


def cmd_history_show(args: argparse.Namespace) -> int:
    """Exit 0 and list the stored runs, oldest commit first; 2 on an unreadable store."""
    from vitcnn.history.store import HistoryStore, StoreError

    try:
        store = HistoryStore(args.store)
    except StoreError as exc:
        return error(str(exc), "history show")
    for e in sorted(store.entries, key=lambda e: e.order):
        dirty = " (dirty)" if e.dirty else ""
        print(f"{e.key}  {(e.commit or 'no commit')[:10]}{dirty}  {e.commit_time or '-'}  {e.profile or '-'}  "
              f"torch {e.torch or '-'}  {e.slug}")
    print(f"{len(store.entries)} run(s) in {store.root}")
    return 0


def add_history(subparsers) -> None:
    from vitcnn.history.series import METRICS

    h = subparsers.add_parser("history", help="keep runs over commits, backfill commits, find change points")
    actions = h.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add run files (or directories of them, e.g. .benchmarks/) to a store",
                             description=cmd_history_add.__doc__)
    add.add_argument("store", help="the history directory (made when absent)")
    add.add_argument("runs", nargs="+", help="run JSON files, or directories searched for *.json")
    add.set_defaults(handler=cmd_history_add)
    run = actions.add_parser("run", help="measure commits in temporary worktrees and add their runs (like asv run)",
                             description=cmd_history_run.__doc__,
                             epilog="Options after -- go to each commit's pytest, e.g. -- --vitcnn-threads 1.")
    run.add_argument("store", help="the history directory (made when absent)")
    run.add_argument("--commits", required=True, metavar="A..B",
                     help="A..B: B's first-parent commits after A, oldest first; or one commit")
    run.add_argument("--every", type=int, default=1, metavar="N", help="measure every Nth commit (the newest always)")
    run.add_argument("--profile", help="the --vitcnn-profile each commit runs")
    run.add_argument("--skip-stored", action="store_true",
                     help="skip commits the store already has a run of (of --profile, when given)")
    run.add_argument("--warm-cache", action="store_true",
                     help="compile with the machine's inductor/Triton caches (default: empty ones per commit, so "
                          "every compile time is a cold compile)")
    run.add_argument("--out-dir", metavar="DIR", help="keep each commit's run file and log here (default: a temp dir)")
    run.set_defaults(handler=cmd_history_run)
    check = actions.add_parser("check", help="change points per setting and metric; exit 1 when a series ends in a "
                                             "regression", description=cmd_history_check.__doc__)
    check.add_argument("store", help="the history directory")
    check.add_argument("--tolerance", type=float,
                       help="relative growth that is a regression, for every metric (default: per metric, " +
                            ", ".join(f"{m.name} {m.tolerance:g}" for m in METRICS.values()) + ")")
    check.add_argument("--metric", action="append", choices=list(METRICS), help="only this metric (repeatable)")
    check.add_argument("--machine", action="append", metavar="SLUG", help="only this machine (repeatable)")
    check.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    check.set_defaults(handler=cmd_history_check)
    show = actions.add_parser("show", help="list the stored runs", description=cmd_history_show.__doc__)
    show.add_argument("store", help="the history directory")
    show.set_defaults(handler=cmd_history_show)


# ----------------------------------------------------------------------------------------------------- publish


def cmd_publish(args: argparse.Namespace) -> int:
    """Exit 0 and print the site's index page; 2 on an unreadable store or an output directory that is not empty
    and not an earlier site."""
    from vitcnn.history.store import HistoryStore, StoreError
    from vitcnn.site.publish import PublishError, publish

    try:
        index = publish(HistoryStore(args.store), Path(args.out))
    except (StoreError, PublishError, OSError) as exc:
        return error(str(exc), "publish")
    print(index)
    return 0


def add_publish(subparsers) -> None:
    p = subparsers.add_parser("publish", help="a static site from a history store (works offline, from file://)",
                              description=cmd_publish.__doc__)
    p.add_argument("store", help="the history directory")
    p.add_argument("--out", required=True, metavar="DIR", help="where the site is written")
    p.set_defaults(handler=cmd_publish)


SUBCOMMANDS: list[Callable] = [add_compare, add_baseline, add_report, add_check, add_merge, add_sweep, add_ab,
                               add_fingerprint, add_history, add_publish]


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
