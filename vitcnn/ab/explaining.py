"""The explanation pass of `vitcnn ab`: after every setting is timed and decided, each `slower` setting is set up
once more in one worker per side and profiled there (vitcnn/explain), so no timed block ever ran under a profiler.
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
from vitcnn.workers import SideError
from vitcnn.workers.process import WorkerProcess

TIMED_LABELS = ("slower",)
COUNTED_LABELS = ("instructions-up",)


def flagged(comparison: Comparison, labels: tuple[str, ...]) -> set[str]:
    """Ids of the settings whose verdict carries one of `labels`."""
    return {v.id for v in comparison.verdicts if set(v.labels) & set(labels)}


def trace_path(trace_dir: Path, side: str, setting_id: str) -> Path:
    return trace_dir / f"{side.lower()}-{re.sub(r'[^A-Za-z0-9._-]', '_', setting_id)}.trace.json"


def explain_timed(workers: dict[str, WorkerProcess], settings: dict[str, Setting], calls: int, trace_dir: Path,
                  side_opts: tuple[str, ...] = ()) -> diff.Explanation:
    """Set one setting up in one worker per side (at once), profile `calls` calls of each side in turn (never at
    once: a profile is a time), free both; the op-level diff from A to B."""
    setting_id = settings["A"].id
    for name in "AB":
        workers[name].send("setup", setting=settings[name].as_dict())
    setups = {name: workers[name].receive("setup") for name in "AB"}
    replies: dict[str, dict] = {}
    try:
        for name in "AB":
            if setups[name]["status"] != "ok":
                return diff.Explanation(setting_id, "ops", "ms per call",
                                        error=f"side {name}'s setup failed again: {setups[name].get('reason')}")
            reply = workers[name].request("profile", calls=calls, trace=str(trace_path(trace_dir, name, setting_id)))
            if reply["status"] != "ok":
                return diff.Explanation(setting_id, "ops", "ms per call",
                                        error=f"side {name}'s profile failed: {reply.get('reason')}")
            replies[name] = reply
    finally:
        for name in "AB":
            workers[name].send("free")
        for name in "AB":
            workers[name].receive("free")
    a, b = replies["A"]["profile"], replies["B"]["profile"]
    device = b["device"]
    totals = {name: sum(ms for ms, _, _ in diff.per_call_ops(p, device).values()) for name, p in (("A", a), ("B", b))}
    return diff.Explanation(
        setting_id, "ops", "ms per call", diff.op_changes(a, b), totals["A"], totals["B"],
        diff.compile_changes(replies["A"], replies["B"]),
        {name: str(trace_path(trace_dir, name, setting_id)) for name in "AB"},
        diff.nsys_command(settings["B"].id, side_opts) if device == "cuda" else None)


def explain_all_timed(pools: dict[str, list[WorkerProcess]], records: list, comparison: Comparison, calls: int,
                      trace_dir: Path, side_opts: tuple[str, ...] = ()) -> dict[str, diff.Explanation]:
    """An explanation for every `slower` setting of the session (records: vitcnn/ab/driver.SettingRecord)."""
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
                trace_dir, side_opts)
        except SideError as exc:
            explanations[record.a_setting.id] = diff.Explanation(record.a_setting.id, "ops", "ms per call",
                                                                 error=str(exc))
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
        return diff.Explanation(setting_id, "functions", "instructions per call", error=str(exc))
    return diff.Explanation(setting_id, "functions", "instructions per call",
                            diff.function_changes(costs["A"], costs["B"]),
                            a.info["instructions_per_call"], b.info["instructions_per_call"])


def render_all(explanations: dict[str, diff.Explanation], markdown: bool = False) -> str:
    """Every explanation of a session, in the order given, under one heading (empty when there is none)."""
    if not explanations:
        return ""
    heading = "\n### Why it moved\n\n" if markdown else "\n"
    return heading + "\n".join(diff.render(e, markdown) for e in explanations.values())
