"""`vitcnn history add|run|check|show` (runs kept over commits, backfilled, their change points) and `vitcnn publish`
(the static site of a history store)."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from vitcnn.cli.common import command, error, group
from vitcnn.runfile import write_output


def history_add(args: argparse.Namespace) -> int:
    """Exit 0 when every file was added or already stored; 2 when one was refused or the store is damaged."""
    from vitcnn.history.store import HistoryStore, StoreError

    try:
        store = HistoryStore(args.store, create=True)
        outcomes = store.add(args.runs)
    except (StoreError, OSError) as exc:
        return error("history add", str(exc))
    for outcome in outcomes:
        print(f"{outcome.outcome:8} {outcome.source}" + (f" ({outcome.key})" if outcome.key else "")
              + (f": {outcome.reason}" if outcome.reason else ""))
    if not outcomes:
        return error("history add", f"no run files in {' '.join(args.runs)}")
    return 2 if any(o.outcome == "refused" for o in outcomes) else 0


def history_run(args: argparse.Namespace) -> int:
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
                                 warm_cache=args.warm_cache, metric=args.metric)
    except (StoreError, backfill.BackfillError, OSError) as exc:
        return error("history run", str(exc))
    counts = Counter(m.outcome for m in done)
    print(f"{len(done)} commit(s): " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
          + f"; run files and logs in {out_dir}")
    return 1 if counts.get("failed") else 0


def history_check(args: argparse.Namespace) -> int:
    """Exit 0: no series ends in a confirmed regression; 1: some series does (its newest level is more than the
    tolerance above the level before its latest confirmed regression); 2: unreadable store or bad options. A change
    point of a timed series (latency, compile time) is confirmed by the instruction count of the same setting and
    machine stepping too, or with --confirm ab by an A/B of its two commits; unconfirmed ones are listed, labelled,
    and do not fail."""
    from vitcnn.history import check, confirm, series
    from vitcnn.history.store import HistoryStore, StoreError

    if args.tolerance is not None and not args.tolerance >= 0:
        return error("history check", f"--tolerance must be >= 0, got {args.tolerance}")
    try:
        store = HistoryStore(args.store)
        runs = [(e.key, run) for e, run in store.runs()]
        built = series.build(runs)
        shown = [s for s in built if (not args.metric or s.metric.name in args.metric)
                 and (not args.machine or s.machine in args.machine)]
        ab = confirm.ABConfirmer(dict(runs), confirm.ab_session, confirm.this_machine) if args.confirm == "ab" \
            else None
        found = check.findings(shown, args.tolerance, evidence=built, ab=ab)
    except StoreError as exc:
        return error("history check", str(exc))
    print(check.render(found), end="")
    if args.markdown:
        try:
            write_output(args.markdown, check.render(found, markdown=True))
        except OSError as exc:
            return error("history check", f"cannot write {args.markdown}: {exc.strerror or exc}")
    print(check.summary(found))
    return 1 if any(f.fails for f in found) else 0


def history_show(args: argparse.Namespace) -> int:
    """Exit 0 and list the stored runs, oldest commit first; 2 on an unreadable store."""
    from vitcnn.history.store import HistoryStore, StoreError

    try:
        store = HistoryStore(args.store)
    except StoreError as exc:
        return error("history show", str(exc))
    for e in sorted(store.entries, key=lambda e: e.order):
        dirty = " (dirty)" if e.dirty else ""
        print(f"{e.key}  {(e.commit or 'no commit')[:10]}{dirty}  {e.commit_time or '-'}  {e.profile or '-'}  "
              f"torch {e.torch or '-'}  {e.slug}")
    print(f"{len(store.entries)} run(s) in {store.root}")
    return 0


def add_history(subparsers) -> None:
    from vitcnn.history.series import METRICS
    from vitcnn.options import METRICS as backfill_metrics

    actions = group(subparsers, "history", "keep runs over commits, backfill commits, find change points")
    add = command(actions, "add", history_add, "add run files (or directories of them, e.g. .benchmarks/) to a store")
    add.add_argument("store", help="the history directory (made when absent)")
    add.add_argument("runs", nargs="+", help="run JSON files, or directories searched for *.json")
    run = command(actions, "run", history_run, "measure commits in temporary worktrees and add their runs (like asv "
                  "run)", epilog="Options after -- go to each commit's pytest, e.g. -- --vitcnn-threads 1.")
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
    run.add_argument("--metric", choices=backfill_metrics, default=backfill_metrics[0],
                     help="time: what each commit's pytest measures by default; instructions: also count each "
                          "setting's instructions per call under Callgrind (--vitcnn-metric instructions: CPU only, "
                          "needs valgrind; deterministic series that confirm a timed change point)")
    check = command(actions, "check", history_check, "change points per setting and metric, each confirmed or not; "
                                                     "exit 1 when a series ends in a confirmed regression")
    check.add_argument("store", help="the history directory")
    check.add_argument("--tolerance", type=float,
                       help="relative growth that is a regression, for every metric (default: per metric, " +
                            ", ".join(f"{m.name} {m.tolerance:g}" for m in METRICS.values()) + ")")
    check.add_argument("--metric", action="append", choices=list(METRICS), help="only this metric (repeatable)")
    check.add_argument("--machine", action="append", metavar="SLUG", help="only this machine (repeatable)")
    check.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    check.add_argument("--confirm", choices=("ab",),
                       help="ab: confirm each regression the store does not (no instruction step) by a real "
                            "`vitcnn ab` of its two commits on this machine, one setting each (minutes per "
                            "regression); default: the store's evidence only")
    show = command(actions, "show", history_show, "list the stored runs")
    show.add_argument("store", help="the history directory")


def publish_site(args: argparse.Namespace) -> int:
    """Exit 0 and print the site's index page; 2 on an unreadable store or an output directory that is not empty
    and not an earlier site."""
    from vitcnn.history.store import HistoryStore, StoreError
    from vitcnn.site.publish import PublishError, publish

    try:
        index = publish(HistoryStore(args.store), Path(args.out))
    except (StoreError, PublishError, OSError) as exc:
        return error("publish", str(exc))
    print(index)
    return 0


def add_publish(subparsers) -> None:
    p = command(subparsers, "publish", publish_site, "a static site from a history store (works offline, from "
                                                     "file://)")
    p.add_argument("store", help="the history directory")
    p.add_argument("--out", required=True, metavar="DIR", help="where the site is written")
