"""The explanation pass of `vitcnn ab`: after every setting is timed and decided, each `slower` or `flops-up`
setting (more work per call: which op does it) is set up once more in one worker per side and profiled there
(vitcnn/explain), so no timed block ever ran under a profiler.
A counted session explains an `instructions-up` from the callgrind dumps it already has: no second run.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from vitcnn.explain import diff
from vitcnn.explain.functions import AnnotateError, function_costs
from vitcnn.gate.comparison import Comparison
from vitcnn.result import Result
from vitcnn.settings import Setting
from vitcnn.workers.process import RunningWorker

TIMED_LABELS = ("slower", "flops-up")
COUNTED_LABELS = ("instructions-up",)


def flagged(comparison: Comparison, labels: tuple[str, ...]) -> set[str]:
    """Ids of the settings whose verdict carries one of `labels`."""
    return {v.id for v in comparison.verdicts if set(v.labels) & set(labels)}


def trace_path(trace_dir: Path, side: str, setting_id: str) -> Path:
    return trace_dir / f"{side.lower()}-{re.sub(r'[^A-Za-z0-9._-]', '_', setting_id)}.trace.json"


def explain_timed(workers: dict[str, RunningWorker], settings: dict[str, Setting], calls: int, trace_dir: Path,
                  profile: str, side_opts: tuple[str, ...] = ()) -> diff.Explanation:
    """Set one setting up in one worker per side (at once), profile `calls` calls of each side in turn (never at
    once: a profile is a time), free both; the op-level diff from A to B."""
    setting_id = settings["A"].id
    traces = {name: str(trace_path(trace_dir, name, settings[name].id)) for name in "AB"}
    for name in "AB":
        workers[name].send("setup", setting=settings[name].as_dict())
    setups = {name: workers[name].receive("setup") for name in "AB"}
    replies: dict[str, dict] = {}
    try:
        failed = [name for name in "AB" if setups[name]["status"] != "ok"]
        if failed:
            return unexplained(setting_id, "ops", f"side {failed[0]}'s setup failed again: "
                                                  f"{setups[failed[0]].get('reason')}")
        for name in "AB":
            reply = workers[name].request("profile", calls=calls, trace=traces[name])
            if reply["status"] != "ok":
                return unexplained(setting_id, "ops", f"side {name}'s profile failed: {reply.get('reason')}")
            replies[name] = reply
    finally:
        for name in "AB":
            workers[name].send("free")
        for name in "AB":
            workers[name].receive("free")
    b_profile = replies["B"]["profile"]
    return diff.explain_ops(
        setting_id, replies["A"]["profile"], b_profile, compile=diff.compile_changes(replies["A"], replies["B"]),
        traces=traces,
        reproduce=diff.nsys_command(settings["B"], profile, side_opts) if b_profile["device"] == "cuda" else None)


def unexplained(setting_id: str, kind: str, why: str) -> diff.Explanation:
    """An explanation that could not be made, saying why."""
    unit = "ms per call" if kind == "ops" else "instructions per call"
    return diff.Explanation(setting_id, kind, unit, error=why)


def explain_all_timed(pools: dict[str, list[RunningWorker]], records: list, comparison: Comparison, calls: int,
                      trace_dir: Path, profile: str, side_opts: tuple[str, ...] = ()) -> dict[str, diff.Explanation]:
    """An explanation for every `slower` or `flops-up` setting of the session (records:
    vitcnn/ab/driver.SettingRecord). An explanation that fails says so in its place: the verdicts, measured already,
    are never lost to it."""
    ids = flagged(comparison, TIMED_LABELS)
    explanations = {}
    for record in records:
        if record.a_setting.id not in ids:
            continue
        print(f"vitcnn ab: explaining {record.a_setting.id}: {calls} calls per side under torch.profiler",
              file=sys.stderr, flush=True)
        try:
            explanations[record.a_setting.id] = explain_timed(
                {name: pools[name][0] for name in "AB"}, {"A": record.a_setting, "B": record.b_setting}, calls,
                trace_dir, profile, side_opts)
        except Exception as exc:  # a worker that died (SideError) or a reply from a worker without "profile"
            explanations[record.a_setting.id] = unexplained(record.a_setting.id, "ops",
                                                            f"{type(exc).__name__}: {exc}")
    return explanations


def explain_counted(a: Result, b: Result) -> diff.Explanation:
    """The functions whose instructions per call changed most, from the callgrind dump each side's count left."""
    setting_id = a.setting.id
    try:
        costs = {}
        for name, result in (("A", a), ("B", b)):
            dump = (result.info or {}).get("instructions_dump")
            if not dump:
                raise AnnotateError(f"side {name} kept no callgrind dump")
            calls = result.info["instructions_calls"]
            costs[name] = {f: n / calls for f, n in function_costs(Path(dump)).items()}
    except AnnotateError as exc:
        return unexplained(setting_id, "functions", str(exc))
    return diff.Explanation(setting_id, "functions", "instructions per call",
                            diff.function_changes(costs["A"], costs["B"]),
                            a.info["instructions_per_call"], b.info["instructions_per_call"])


def render_all(explanations: dict[str, diff.Explanation], markdown: bool = False) -> str:
    """Every explanation of a session, in the order given, under one heading (empty when there is none)."""
    if not explanations:
        return ""
    heading = "\n### Why it moved\n\n" if markdown else "\n"
    return heading + "\n".join(diff.render(e, markdown) for e in explanations.values())
