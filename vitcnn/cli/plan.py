"""`vitcnn plan`: before a run, what it will measure and how long that takes, per setting and per shard, from the
costs measured on named machines (vitcnn/scale/costs.py); what was never measured on the device is said."""

from __future__ import annotations

import argparse

from vitcnn import settings
from vitcnn.cli.common import add_axis_options, command, error, selected_settings


def minutes(seconds: float | None) -> str:
    """'45 s' under two minutes, else '7.5 min' (or '3.2 h'); 'unknown' for no estimate."""
    if seconds is None:
        return "unknown"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 3 * 3600 else f"{seconds / 3600:.1f} h"


def plan(args: argparse.Namespace) -> int:
    """Exit 0: the plan printed; 2: an unknown profile, axis value or device, or nothing selected."""
    from vitcnn.scale import costs, shard

    try:
        profile = settings.profile(args.profile) if args.profile else None
        device = args.device or (profile.default_on[0] if profile and profile.default_on else "cpu")
        if device not in ("cpu", "cuda"):
            raise ValueError(f"--device must be cpu or cuda, got {device!r}")
        profile = profile or settings.default_profile(device)
        selected = selected_settings(args, profile.name, device)
        if args.shards < 1:
            raise ValueError(f"--shards must be >= 1, got {args.shards}")
    except ValueError as exc:
        return error("plan", str(exc))
    if not selected:
        return error("plan", f"no setting of profile {profile.name} is valid on {device} with these options")
    estimates = costs.estimate(selected, device, profile.compile_extras)
    by_id = {e.setting.id: e for e in estimates}
    width = max(len(s.id) for s in selected)
    print(f"profile {profile.name} on {device}: {len(selected)} settings"
          f"{' (compile extras on)' if profile.compile_extras else ''}")
    for e in estimates:
        print(f"  {e.setting.id:<{width}}  {minutes(e.seconds):>9}  {e.note}")
    count = min(args.shards, len(selected))
    if count > 1:
        for i, part in enumerate(shard.partition(selected, count), 1):
            print(f"shard {i}/{count}: {len(part)} settings, {total([by_id[s.id] for s in part])}")
    measured = [e for e in estimates if e.measured]
    machines = sorted({e.machine for e in measured})
    print(f"total: {total(estimates)} on one {device}; {len(measured)} of {len(estimates)} settings measured"
          + (f" (on {', '.join(machines)})" if machines else "") +
          ("" if len(measured) == len(estimates) else
           f"; {len(estimates) - len(measured)} NOT measured on {device}: modelled or unknown, treat as a guess"))
    return 0


def total(estimates: list) -> str:
    """The estimates' sum; 'at least' it when some have no figure, 'unknown' when none has."""
    known = [e.seconds for e in estimates if e.seconds is not None]
    if not known:
        return "unknown"
    return ("" if len(known) == len(estimates) else "at least ") + minutes(sum(known))


def add_plan(subparsers) -> None:
    p = command(subparsers, "plan", plan, "print what a run will measure and how long it takes, per setting and shard")
    p.add_argument("--profile", help="settings profile (default: the device's default profile)")
    add_axis_options(p)
    p.add_argument("--device", help="cpu or cuda (default: the profile's device, else cpu); nothing is measured")
    p.add_argument("--shards", type=int, default=1, metavar="N",
                   help="split the selection as --vitcnn-shard=K/N would and estimate each shard")
