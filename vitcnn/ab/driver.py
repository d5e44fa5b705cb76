"""The `vitcnn ab` session: start both sides, then setting by setting set up both, alternate timing blocks in a
balanced order with only one side active at a time, finish and free both; then decide and write the outputs.

Order: pair p of blocks runs A then B when the Thue-Morse bit of p is 0, else B then A (AB BA BA AB BA AB AB BA
= ABBA BAAB BAAB ABBA): a drift that is linear over four blocks, or quadratic over eight, favours neither side.
Both sides time the same number of calls per block (about target-seconds / blocks of the slower side, at least
MIN_CALLS); each block starts with an untimed lead-in (worker.lead_in_calls) that refills caches the other
side evicted.
"""

from __future__ import annotations

import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from vitcnn import fingerprint
from vitcnn.ab.sidefile import SideResult, run_json
from vitcnn.ab.sides import Checkout, Side, SideError, WorkerProcess
from vitcnn.gate import paired, rules, verdicts
from vitcnn.measure.pipeline import MeasureOptions
from vitcnn.runfile import parse_run, write_atomic
from vitcnn.settings import Setting, invalid_reason

MIN_CALLS = 3  # a block's median needs a few calls


@dataclass(frozen=True)
class ABOptions:
    """One A/B session: the two sides, the settings (A's view; a side's axis options replace fields for it),
    and the statistics."""

    a: Side
    b: Side
    settings: list[Setting]
    profile: str
    device: str | None = None
    threads: int | None = None
    blocks: int = 20
    threshold: float = 0.03
    alpha: float = 0.05
    target_seconds: float = MeasureOptions().target_seconds  # timed seconds per side and setting
    markdown: Path | None = None
    json_path: Path | None = None
    out_dir: Path | None = None


def pair_order(p: int) -> str:
    """"AB" or "BA" for pair p: the Thue-Morse sequence (parity of the number of one bits of p)."""
    return "BA" if bin(p).count("1") % 2 else "AB"


def calls_per_block(per_call_s: list[float], target_seconds: float, blocks: int) -> int:
    """Calls per block so that the slower side spends about target_seconds / blocks per block."""
    slowest = max(max(per_call_s), 1e-6)
    return max(MIN_CALLS, math.ceil(target_seconds / blocks / slowest))


@dataclass
class SettingRecord:
    """Everything measured for one setting, both sides."""

    a_setting: Setting
    b_setting: Setting
    results: dict[str, SideResult] = field(default_factory=dict)
    calls: int | None = None
    blocks: list[dict] = field(default_factory=list)  # {"pair", "side", "start_s", "samples", "median"}

    def medians(self, side: str) -> list[float]:
        return [b["median"] for b in sorted(self.blocks, key=lambda b: b["pair"]) if b["side"] == side]


def _progress(index: int, total: int, record: SettingRecord, done: int, blocks: int, final: bool) -> None:
    a, b = record.medians("A"), record.medians("B")
    n = min(len(a), len(b))
    ratio = statistics.median([y / x for x, y in zip(a[:n], b[:n])]) if n else math.nan
    line = (f"vitcnn ab: [{index}/{total}] {record.a_setting.id}: block {done} of {blocks} per side, "
            f"running B/A {ratio:.3f}")
    if sys.stderr.isatty() and not final:
        print("\r" + line, end="", file=sys.stderr, flush=True)
    elif final:
        print(("\r" if sys.stderr.isatty() else "") + line, file=sys.stderr, flush=True)


def _measure_setting(workers: dict[str, WorkerProcess], record: SettingRecord, options: ABOptions,
                     device_type: str, index: int, total: int, started: float) -> None:
    settings = {"A": record.a_setting, "B": record.b_setting}
    per_call = {}
    for name in "AB":
        why_not = invalid_reason(settings[name], device_type)
        if why_not:
            record.results[name] = SideResult(settings[name], "skipped", why_not)
            continue
        reply = workers[name].request("setup", setting=settings[name].as_dict())
        if reply["status"] == "ok":
            per_call[name] = reply["per_call_s"]
        else:
            record.results[name] = SideResult(settings[name], reply["status"], reply.get("reason"))
    if len(per_call) == 2:
        record.calls = calls_per_block(list(per_call.values()), options.target_seconds, options.blocks)
        for p in range(options.blocks):
            for name in pair_order(p):
                if name in record.results:  # this side failed in an earlier block
                    continue
                start = time.perf_counter() - started
                reply = workers[name].request("block", calls=record.calls)
                if reply["status"] != "ok":
                    record.results[name] = SideResult(settings[name], reply["status"], reply.get("reason"))
                    continue
                record.blocks.append({"pair": p, "side": name, "start_s": round(start, 4),
                                      "samples": reply["samples"], "median": paired.block_median(reply["samples"])})
            if record.results:
                break
            _progress(index, total, record, p + 1, options.blocks, final=False)
    for name in "AB":
        if name in per_call and name not in record.results:
            reply = workers[name].request("finish")
            record.results[name] = SideResult(settings[name], reply["status"], reply.get("reason"),
                                              reply.get("info") or {}, reply.get("samples") or [])
        workers[name].request("free")
    if record.blocks:
        _progress(index, total, record, len(record.medians("B")), options.blocks, final=True)
    else:
        print(f"vitcnn ab: [{index}/{total}] {record.a_setting.id}: A {record.results['A'].status}, "
              f"B {record.results['B'].status}", file=sys.stderr, flush=True)


def _fingerprint_check(hello: dict[str, dict], options: ABOptions) -> tuple[list[str], str | None]:
    """Notes about differing fingerprints, and an error when they differ without the sides asking for it."""
    fps = {name: hello[name]["machine_info"]["vitcnn_fingerprint"] for name in "AB"}
    diff = fingerprint.differences(fps["A"], fps["B"])
    if not diff:
        return [], None
    listed = "; ".join(f"{k}: A={a!r} B={b!r}" for k, (a, b) in diff.items())
    if options.a.python != options.b.python:
        return [f"The sides' fingerprints differ, as two interpreters were asked for: {listed}"], None
    return [], (f"the sides' fingerprints differ ({listed}) although both run {options.a.python}; an A/B "
                f"measures one change on one machine: use --a-python/--b-python to compare software stacks")


def _write_outputs(options: ABOptions, hello: dict, records: list[SettingRecord], comparison: rules.Comparison,
                   wall_s: float) -> list[str]:
    lines = []
    runs = {}
    for name in "AB":
        runs[name] = run_json([r.results[name] for r in records], hello[name]["machine_info"], options.profile)
    if options.out_dir:
        options.out_dir.mkdir(parents=True, exist_ok=True)
        for name in "AB":
            path = options.out_dir / f"{name.lower()}.json"
            write_atomic(path, runs[name])
            lines.append(f"vitcnn ab: side {name}'s run file (for `vitcnn report`/`compare`): {path}")
    if options.markdown:
        options.markdown.parent.mkdir(parents=True, exist_ok=True)
        options.markdown.write_text(verdicts.paired_markdown(comparison))
    if options.json_path:
        by_id = {v.id: v for v in comparison.verdicts}
        data = {
            "schema": 1, "profile": options.profile, "wall_s": wall_s,
            "options": {"blocks": options.blocks, "threshold": options.threshold, "alpha": options.alpha,
                        "target_seconds": options.target_seconds, "device": options.device,
                        "threads": options.threads},
            "sides": {name: {"python": side.python, "env": side.env, "ref": side.ref, "opts": list(side.opts),
                             "worker": {k: v for k, v in hello[name].items() if k != "ok"}}
                      for name, side in (("A", options.a), ("B", options.b))},
            "settings": [{"id": r.a_setting.id, "a_id": r.a_setting.id, "b_id": r.b_setting.id,
                          "status": {n: r.results[n].status for n in "AB"}, "calls_per_block": r.calls,
                          "order": "".join(pair_order(p) for p in range(options.blocks)),
                          "verdict": _verdict_json(by_id[r.a_setting.id]), "blocks": r.blocks} for r in records],
        }
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(options.json_path, data)
    return lines


def _verdict_json(v: rules.SettingVerdict) -> dict:
    return {"labels": list(v.labels), "regression": v.regression, "ratio": v.ratio, "ci": [v.ci_low, v.ci_high],
            "p_adjusted": v.p_value, "pairs": v.pairs, "detail": v.detail}


def run(options: ABOptions) -> int:
    """The whole session; exit 0 (no regression), 1 (a regression), 2 (a side cannot start, refused)."""
    started = time.perf_counter()
    checkouts: list[Checkout] = []
    workers: dict[str, WorkerProcess] = {}
    logs = Path(tempfile.mkdtemp(prefix="vitcnn-ab-logs-"))
    worker_args = [*(["--vitcnn-device", options.device] if options.device else []),
                   *(["--vitcnn-threads", str(options.threads)] if options.threads else []),
                   "--vitcnn-profile", options.profile]
    try:
        hello = {}
        for side in (options.a, options.b):
            checkout = Checkout(side.ref)
            checkouts.append(checkout)
            workers[side.name] = WorkerProcess(side, checkout, worker_args, logs / f"{side.name.lower()}.log")
            hello[side.name] = workers[side.name].request("hello")
            where = f"ref {side.ref}" if side.ref else str(checkout.root)
            print(f"vitcnn ab: side {side.name}: {hello[side.name]['python']} (pid {hello[side.name]['pid']}), "
                  f"vitcnn from {where}, torch {hello[side.name]['machine_info']['vitcnn_fingerprint']['torch']}",
                  file=sys.stderr, flush=True)
        notes, refusal = _fingerprint_check(hello, options)
        if refusal:
            print(f"vitcnn ab: error: {refusal}", file=sys.stderr)
            return 2
        records = []
        device_type = hello["A"]["machine_info"]["vitcnn_fingerprint"]["device"]
        a_fields, b_fields = options.a.axis_overrides(), options.b.axis_overrides()
        for i, setting in enumerate(options.settings, 1):
            record = SettingRecord(replace(setting, **a_fields), replace(setting, **b_fields))
            _measure_setting(workers, record, options, device_type, i, len(options.settings), started)
            records.append(record)
    except SideError as exc:
        print(f"vitcnn ab: error: {exc}", file=sys.stderr)
        return 2
    finally:
        for worker in workers.values():
            worker.close()
        for checkout in checkouts:
            checkout.close()
    wall_s = time.perf_counter() - started
    comparison = _compare(options, hello, records, notes)
    comparison.notes.append(f"{len(records)} settings, {options.blocks} blocks per side, {wall_s:.0f} s")
    print(verdicts.format_paired_table(comparison), end="")
    for line in _write_outputs(options, hello, records, comparison, wall_s):
        print(line)
    print(f"vitcnn ab: {'FAILED' if comparison.has_regression else 'passed'}: {comparison.summary()}")
    return 1 if comparison.has_regression else 0


def _compare(options: ABOptions, hello: dict, records: list[SettingRecord], notes: list[str]) -> rules.Comparison:
    runs = {name: parse_run(run_json([r.results[name] for r in records], hello[name]["machine_info"],
                                     options.profile), f"side {name}") for name in "AB"}
    pairs = [rules.PairedInput(runs["A"].results[r.a_setting.id], runs["B"].results[r.b_setting.id],
                              r.medians("A"), r.medians("B")) for r in records]
    return rules.compare_paired(pairs, rules.GateOptions(tolerance=options.threshold, alpha=options.alpha),
                               notes=notes)
