"""`vitcnn bisect`: the first commit (or interpreter) that made a selection of settings worse, each step a
`vitcnn ab` against the last known-good candidate (vitcnn/bisect.py)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from vitcnn.cli.ab import add_session_options, session_device, session_fields
from vitcnn.cli.common import command, error
from vitcnn.runfile import write_output

EXIT = ("Exit 0: the first bad candidate is named; 1: none is named (a probe stayed inconclusive, every candidate "
        "left was skipped, or the bad end is not worse than the good end); 2: usage error, a bad range or a side "
        "that cannot start.")


def run(args: argparse.Namespace) -> int:
    """Bisect; its exit codes are EXIT."""
    from vitcnn import bisect
    from vitcnn.ab.design import ABOptions
    from vitcnn.ab.probe import settle
    from vitcnn.ab.sides import Side, parse_env, split_opts
    from vitcnn.workers.checkout import PROJECT_ROOT

    repo = Path(args.repo).resolve() if args.repo else PROJECT_ROOT
    try:
        if bool(args.pythons) == bool(args.good or args.bad):
            raise ValueError("give either --good REF and --bad REF, or --pythons P1,P2,...")
        if args.pythons:
            candidates = bisect.interpreters([p for p in args.pythons.split(",") if p])
        elif not (args.good and args.bad):
            raise ValueError("--good and --bad go together")
        else:
            candidates = bisect.commits(args.good, args.bad, repo)
        env, opts = parse_env(args.env, "A"), split_opts(args.opts)
        base = ABOptions(a=Side("A", env=env, opts=opts), b=Side("B", env=env, opts=opts),
                         **session_fields(args, session_device(args)), repo=repo)
        base.a.axis_overrides()  # refuses options that are not a side's, before anything starts
        if args.max_processes < base.processes:
            raise ValueError("--max-processes must be >= --processes")
    except ValueError as exc:  # SideError is a ValueError
        return error("bisect", str(exc).replace("--a-", "--"))
    if not base.settings:
        return error("bisect", "no setting selected (the axis options leave nothing valid on this device)")

    def side(name: str, candidate: bisect.Candidate) -> Side:
        return Side(name, python=candidate.python or sys.executable, env=env, opts=opts, ref=candidate.ref)

    def probe(good: bisect.Candidate, candidate: bisect.Candidate):
        print(f"vitcnn bisect: probing {candidate.label} against {good.label}", file=sys.stderr, flush=True)
        return settle(replace(base, a=side("A", good), b=side("B", candidate)), args.max_processes)[-1]

    outcome = bisect.search(candidates, probe)
    if outcome.steps[0].probe.exit_code == 2:  # the ends could not be compared: a side cannot start
        return error("bisect", f"the probe of {candidates[-1].label} against {candidates[0].label} could not start "
                               f"(its error is above)")
    print(bisect.render(outcome), end="")
    decisive = outcome.decisive
    if outcome.status == bisect.FOUND and decisive is not None:
        print(decisive.probe.markdown, end="")
    if args.json:
        write_output(args.json, bisect.to_json(outcome))
    return 0 if outcome.status == bisect.FOUND else 1


def add_bisect(subparsers) -> None:
    p = command(
        subparsers, "bisect", run, "find the first commit (or interpreter) that made settings worse, by A/B probes",
        "Binary search over the first-parent commits after --good up to --bad (or over --pythons, the good one "
        "first), each probe a `vitcnn ab` of a candidate against the last known-good one: a regression moves the "
        "bad bound, a settled same moves the good one, an inconclusive probe is asked again with twice the "
        "processes (up to --max-processes) and, if still inconclusive, ends the search with the range that remains. "
        "With --metric instructions every probe is a deterministic count. " + EXIT)
    p.add_argument("--good", metavar="REF", help="a commit that is known good")
    p.add_argument("--bad", metavar="REF", help="a later commit that is known bad (good must be its ancestor)")
    p.add_argument("--pythons", metavar="P1,P2,...",
                   help="instead of commits: interpreters in order (e.g. one per torch build), the good one first")
    p.add_argument("--repo", metavar="DIR", help="the git repository the commits are from (default: this project)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="environment override for every probe's both sides (repeatable)")
    p.add_argument("--opts", metavar="'OPTIONS'",
                   help="vitcnn measurement options for both sides of every probe, as pytest takes them")
    add_session_options(p)
    p.add_argument("--max-processes", type=int, default=12,
                   help="an inconclusive probe is asked again with twice the processes per side, up to this "
                        "(default %(default)s)")
    p.add_argument("--json", metavar="FILE", help="write every probe's verdicts and the outcome as JSON")
