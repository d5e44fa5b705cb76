"""The `vitcnn ab` session: start P worker processes per side, then setting by setting set each up, time blocks
in rounds with only one process active at a time, look after every stage, finish and free; then decide and write.

A setting runs in stages. Stage 1 sets it up in the first `first` processes of each side (default 3) and times
`rounds` rounds; every later stage sets it up in one more fresh process per side and times `rounds` more rounds over
all of them, up to `processes` per side. After each stage the setting is looked at (paired.estimate) and stops as
soon as it is settled (paired.settled): a clear slowdown or speed-up, or a `same` that resolves `detect`.
Borderline settings get more processes, clear ones stop early: the extra processes cost setups only where they
decide something.

Order inside a round: process pairs (A_k, B_k) in an order rotated by the round, each pair's two blocks AB or BA
after the Thue-Morse bit of a running pair counter (AB BA BA AB BA AB AB BA ...): drift that is linear over four
blocks, or quadratic over eight, favours neither side. Every block times the same number of calls (about
target-seconds / (rounds x first processes) of the slowest process, at least MIN_CALLS) after an untimed lead-in
(worker.lead_in_calls) that refills caches the other processes evicted. Both are sized from each process's time
per call measured alone after its setup (CALIBRATION_SECONDS): the warm-up ran beside the other processes' setups.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from vitcnn import fingerprint
from vitcnn.ab import explaining
from vitcnn.ab.design import CALIBRATION_SECONDS, ABOptions, calls_per_block, pair_order
from vitcnn.ab.outputs import explanation_json, sides_json, verdict_json, write_outputs
from vitcnn.ab.pools import Pools
from vitcnn.ab.sidefile import run_json
from vitcnn.explain.diff import Explanation
from vitcnn.gate import paired, rules, verdicts
from vitcnn.measure import host
from vitcnn.result import Result
from vitcnn.runfile import write_output
from vitcnn.settings import Setting, invalid_reason
from vitcnn.workers import SideError
from vitcnn.workers.checkout import PROJECT_ROOT, Checkout
from vitcnn.workers.process import RunningWorker


@dataclass
class SettingRecord:
    """Everything measured for one setting, both sides."""

    a_setting: Setting
    b_setting: Setting
    results: dict[str, Result] = field(default_factory=dict)
    calls: int | None = None
    processes: int = 0  # per side, set up so far
    rounds: int = 0
    pairs: int = 0  # block pairs timed so far (the Thue-Morse counter)
    blocks: list[dict] = field(default_factory=list)  # {"side", "process", "round", "pair", "start_s", ...}
    looks: list[dict] = field(default_factory=list)
    infos: dict[str, list[dict]] = field(default_factory=lambda: {"A": [], "B": []})

    def paired_blocks(self) -> list[paired.Block]:
        return paired_blocks(self.blocks)


def paired_blocks(blocks: list[dict]) -> list[paired.Block]:
    """The statistics' view of timed blocks as the driver keeps them and its JSON writes them."""
    return [paired.Block(b["side"], b["process"], b["round"], b["median"],
                         (b.get("host") or {}).get("speed_probe_ns")) for b in blocks]


# A contended block (vitcnn/measure/host.py) is timed again after these pauses, the neighbour given time to leave.
RETIME_PAUSES_S = (0.2, 1.0, 3.0)


def side_host_fields(blocks: list[dict], side: str) -> dict:
    """A side's host state over the blocks it kept, and why its speed cannot be judged: blocks still contended
    after re-timing (None when none was). Workers of a vitcnn from before host states report none."""
    states = [b["host"] for b in blocks if b["side"] == side and b.get("host")]
    if not states:
        return {}
    contended = [s["contended"] for s in states if s.get("contended")]
    return {"host_state": host.summary(states),
            "contended": f"{len(contended)} of {len(states)} block(s) of side {side} contended after re-timing "
                         f"({contended[0]})" if contended else None}


class _Setting:
    """Runs one setting's stages on the session's worker pools."""

    def __init__(self, pools: dict[str, list[RunningWorker]], record: SettingRecord, options: ABOptions,
                 started: float) -> None:
        self.pools, self.record, self.options, self.started = pools, record, options, started
        self.settings = {"A": record.a_setting, "B": record.b_setting}
        self.per_call: list[float] = []
        self.held = {"A": 0, "B": 0}  # processes per side that hold the setting

    def failed(self) -> bool:
        return bool(self.record.results)

    def _fail(self, name: str, reply: dict) -> None:
        self.record.results.setdefault(name, Result(self.settings[name], reply["status"], reply.get("reason")))

    def add_processes(self, count: int) -> None:
        """Set the setting up in `count` more processes per side, all at once (building, counting and compiling are
        mostly one Python thread each; nothing is timed yet). Both sides are set up even when one fails: the
        other's finish still reports its numbers."""
        start = self.record.processes
        jobs = [(name, k) for k in range(start, start + count) for name in "AB" if name not in self.record.results]
        for name, k in jobs:  # the first process's numbers stand for its side (finish): only it counts FLOPs
            self.pools[name][k].send("setup", setting=self.settings[name].as_dict(), count_flops=k == 0)
        ready = []
        for name, k in jobs:
            reply = self.pools[name][k].receive("setup")
            if reply["status"] == "ok":
                self.held[name] += 1
                ready.append((name, k, reply["per_call_s"]))
            else:
                self._fail(name, reply)
        for name, k, warm_up_estimate in ready:  # one process at a time
            if not self.failed():
                self.per_call.append(self._calibrated(name, k, warm_up_estimate))
        if not self.failed():
            self.record.processes += count

    def _calibrated(self, name: str, k: int, warm_up_estimate: float) -> float:
        """Process k's time per call, timed alone now (worker "calibrate"); a worker of an older checkout, which
        cannot, gives its warm-up's estimate."""
        worker = self.pools[name][k]
        if "calibrate" not in worker.commands:
            return warm_up_estimate
        reply = worker.request("calibrate", seconds=CALIBRATION_SECONDS)
        if reply["status"] != "ok":
            self._fail(name, reply)
            return warm_up_estimate
        return reply["per_call_s"]

    def time_rounds(self, rounds: int) -> None:
        record = self.record
        for _ in range(rounds):
            r, p = record.rounds, record.processes
            for j in range(p):
                k = (j + r) % p
                for name in pair_order(record.pairs):
                    start = time.perf_counter() - self.started
                    reply, retimed = self._block(name, k)
                    if reply["status"] != "ok":
                        self._fail(name, reply)
                        return
                    record.blocks.append({"side": name, "process": k, "round": r, "pair": record.pairs,
                                          "start_s": round(start, 4), "samples": reply["samples"],
                                          "median": paired.block_median(reply["samples"]),
                                          "host": reply.get("host"), "retimed": retimed})
                record.pairs += 1
            record.rounds += 1

    def _block(self, name: str, k: int) -> tuple[dict, int]:
        """One block of process k of side `name`, timed again (after a pause) while a neighbour contended it, at
        most RETIMES times; the reply and how often it was re-timed. A block still contended is kept and marks
        its setting (contended_reason), whose speed is then not judged."""
        retimed = 0
        while True:
            reply = self.pools[name][k].request("block", calls=self.record.calls)
            contended = reply["status"] == "ok" and (reply.get("host") or {}).get("contended")
            if not contended or retimed == len(RETIME_PAUSES_S):
                return reply, retimed
            time.sleep(RETIME_PAUSES_S[retimed])
            retimed += 1

    def look(self) -> paired.PairedEstimate:
        o = self.options
        e = paired.estimate(self.record.paired_blocks(), o.looks, o.alpha, o.threshold, o.machine_time)
        self.record.looks.append({"processes": e.processes, "rounds": self.record.rounds, "ratio": e.ratio,
                                  "ci": [e.ci_low, e.ci_high], "p_slower": e.p_slower, "p_faster": e.p_faster,
                                  "detectable": e.detectable, "machine_slope": e.machine_slope})
        return e

    def finish(self) -> None:
        """Finish the first process of each side that did not fail (memory, probe: its numbers stand for the side),
        the others only where it measured compile extras that pool over processes; keep every process's samples
        (its blocks'). Then free the long-lived processes (forks just exit)."""
        record = self.record
        finishing = {name: self.pools[name][:self.held[name]] for name in "AB" if name not in record.results}
        for workers in finishing.values():
            workers[0].send("finish")
        for name, workers in finishing.items():
            reply = workers[0].receive("finish")
            if reply["status"] != "ok":
                self._fail(name, reply)
                continue
            record.infos[name].append(reply.get("info") or {})
            if pooled(record.infos[name]):
                for worker in workers[1:]:
                    reply = worker.request("finish")
                    if reply["status"] != "ok":
                        self._fail(name, reply)
                        break
                    record.infos[name].append(reply.get("info") or {})
            if name not in record.results:
                samples = [x for k in range(len(workers)) for b in record.blocks
                           if b["side"] == name and b["process"] == k for x in b["samples"]]
                info = {**record.infos[name][0], **pooled(record.infos[name]),
                        "ab_processes": self.held[name], "ab_rounds": record.rounds,
                        **side_host_fields(record.blocks, name)}
                record.results[name] = Result(self.settings[name], "ok", samples=samples, info=info)
        if self.options.fresh_processes:
            return
        # + 1: a setup that failed may hold something; finishing frees nothing, so every holder is freed
        holders = [w for name in "AB" for w in self.pools[name][:self.held[name] + 1]]
        for worker in holders:
            worker.send("free")
        for worker in holders:
            worker.receive("free")


def _progress(index: int, total: int, record: SettingRecord, e: paired.PairedEstimate | None, final: bool) -> None:
    where = f"{record.processes} processes per side, {record.rounds} rounds"
    numbers = (f", B/A {e.ratio:.3f} ({e.ci_low:.3f}-{e.ci_high:.3f}), detectable {e.detectable:+.1%}"
               if e is not None and e.processes else "")
    line = f"vitcnn ab: [{index}/{total}] {record.a_setting.id}: {where}{numbers}"
    if sys.stderr.isatty() and not final:
        print("\r" + line, end="", file=sys.stderr, flush=True)
    elif final:
        print(("\r" if sys.stderr.isatty() else "") + line, file=sys.stderr, flush=True)


def _measure_setting(pools: dict[str, list[RunningWorker]], record: SettingRecord, options: ABOptions,
                     device_type: str, index: int, total: int, started: float) -> None:
    run = _Setting(pools, record, options, started)
    for name in "AB":
        why_not = invalid_reason(run.settings[name], device_type)
        if why_not:
            record.results[name] = Result(run.settings[name], "skipped", why_not)
    e = None
    if len(record.results) < 2:
        run.add_processes(options.first)
        if not run.failed():
            record.calls = calls_per_block(run.per_call, options.target_seconds, options.rounds * options.first)
        while not run.failed():
            run.time_rounds(options.rounds)
            if run.failed():
                break
            e = run.look()
            _progress(index, total, record, e, final=False)
            if record.processes >= options.processes or paired.settled(e, options.alpha, options.threshold,
                                                                         options.detect):
                break
            run.add_processes(1)
        run.finish()
    if record.blocks and all(record.results[n].status == "ok" for n in "AB"):
        _progress(index, total, record, e, final=True)
    else:
        print(f"vitcnn ab: [{index}/{total}] {record.a_setting.id}: A {record.results['A'].status}, "
              f"B {record.results['B'].status}", file=sys.stderr, flush=True)


def _fingerprint_check(hello: dict[str, dict], options: ABOptions) -> tuple[list[str], str | None]:
    """Notes about differing fingerprints or run conditions, and an error when the identities differ without the
    sides asking for it (conditions, such as the malloc policy, a side's options may change on purpose)."""
    fps = {name: hello[name]["machine_info"]["vitcnn_fingerprint"] for name in "AB"}
    diff = fingerprint.differences(fps["A"], fps["B"])
    changed = fingerprint.condition_changes(fps["A"], fps["B"])
    conditions = "; ".join(f"{k}: A={a!r} B={b!r}" for k, (a, b) in changed.items())
    notes = [f"The sides ran under different conditions ({conditions}): part of any difference may be theirs, "
             "not the code's."] if changed else []
    if not diff:
        return notes, None
    listed = "; ".join(f"{k}: A={a!r} B={b!r}" for k, (a, b) in diff.items())
    if options.a.python != options.b.python:
        return [f"The sides' fingerprints differ, as two interpreters were asked for: {listed}", *notes], None
    return notes, (f"the sides' fingerprints differ ({listed}) although both run {options.a.python}; an A/B "
                f"measures one change on one machine: use --a-python/--b-python to compare software stacks")


def _write_outputs(options: ABOptions, hello: dict, records: list[SettingRecord], comparison: rules.Comparison,
                   wall_s: float, explanations: dict[str, Explanation]) -> list[str]:
    lines = []
    if options.out_dir:
        for name in "AB":
            path = options.out_dir / f"{name.lower()}.json"
            results = [r.results[name] for r in records]
            write_output(path, run_json(results, hello[name]["machine_info"], options.profile))
            lines.append(f"vitcnn ab: side {name}'s run file (for `vitcnn report`/`compare`): {path}")
    by_id = {v.id: v for v in comparison.verdicts}
    markdown = verdicts.paired_markdown(comparison) + explaining.render_all(explanations, markdown=True)
    write_outputs(options, markdown, {
        "schema": 1, "profile": options.profile, "wall_s": wall_s,
        "options": {"processes": options.processes, "fresh_processes": options.fresh_processes,
                    "first": options.first, "rounds": options.rounds,
                    "looks": options.looks, "threshold": options.threshold, "alpha": options.alpha,
                    "detect": options.detect, "target_seconds": options.target_seconds,
                    "device": options.device, "threads": options.threads, "explain": options.explain,
                    "explain_calls": options.explain_calls, "machine_time": options.machine_time},
        "sides": sides_json(options, hello),
        "settings": [{"id": r.a_setting.id, "a_id": r.a_setting.id, "b_id": r.b_setting.id,
                      "status": {n: r.results[n].status for n in "AB"}, "calls_per_block": r.calls,
                      "processes": r.processes, "rounds": r.rounds, "looks": r.looks,
                      "verdict": verdict_json(by_id[r.a_setting.id]), "blocks": r.blocks,
                      "explanation": explanation_json(explanations, r.a_setting.id)} for r in records],
    })
    return lines


def pooled(infos: list[dict]) -> dict:
    """The compile fields of a side that ran one setting in several processes: every process's speedup pairs
    together, the median of their cold and warm compile times."""
    from vitcnn.measure.twin import speedup  # the measuring side's statistic; imports torch, so only here

    logs = [x for info in infos for x in (info.get("speedup_log_ratios") or [])]
    fields: dict = {}
    if logs:
        pooled_speedup = speedup(logs)
        fields.update(speedup_log_ratios=logs, speedup_vs_eager=pooled_speedup.ratio,
                      speedup_ci_low=pooled_speedup.ci_low, speedup_ci_high=pooled_speedup.ci_high)
    for key in ("compile_cold_s", "compile_warm_s"):
        values = [v for info in infos if (v := info.get(key)) is not None]
        if values:
            fields[key] = statistics.median(values)
    return fields


def run(options: ABOptions) -> int:
    """The whole session; exit 0 (no regression), 1 (a regression), 2 (a side cannot start, refused)."""
    if options.metric == "instructions":
        from vitcnn.ab import counted

        return counted.run(options)
    started = time.perf_counter()
    checkouts: list[Checkout] = []
    pools: Pools | None = None
    logs = Path(tempfile.mkdtemp(prefix="vitcnn-ab-logs-"))
    try:
        for side in (options.a, options.b):
            checkouts.append(Checkout(side.ref, options.repo or PROJECT_ROOT))
        pools = Pools((options.a, options.b), checkouts, options.worker_args(), options.processes,
                      options.fresh_processes, logs)
        hellos = pools.hello()
        hello = {name: hellos[name][0] for name in "AB"}
        for side, checkout in zip((options.a, options.b), checkouts):
            where = f"ref {side.ref}" if side.ref else str(checkout.root)
            pids = (f"a fresh fork of template {hello[side.name]['template_pid']} per setting and process"
                    if options.fresh_processes else f"pids {', '.join(str(h['pid']) for h in hellos[side.name])}")
            print(f"vitcnn ab: side {side.name}: {hello[side.name]['python']} ({options.processes} processes: "
                  f"{pids}), vitcnn from {where}, "
                  f"torch {hello[side.name]['machine_info']['vitcnn_fingerprint']['torch']}",
                  file=sys.stderr, flush=True)
        notes, refusal = _fingerprint_check(hello, options)
        if refusal:
            print(f"vitcnn ab: error: {refusal}", file=sys.stderr)
            return 2
        records = []
        device_type = hello["A"]["machine_info"]["vitcnn_fingerprint"]["device"]
        a_fields, b_fields = options.a.axis_overrides(), options.b.axis_overrides()
        pools.prime([(replace(s, **a_fields), replace(s, **b_fields)) for s in options.settings], device_type)
        for i, setting in enumerate(options.settings, 1):
            record = SettingRecord(replace(setting, **a_fields), replace(setting, **b_fields))
            workers = pools.take()
            try:
                _measure_setting(workers, record, options, device_type, i, len(options.settings), started)
            finally:
                pools.give_back(workers)
            records.append(record)
        comparison = _compare(options, records, notes)
        trace_dir = (options.out_dir / "traces").resolve() if options.out_dir else logs  # workers run elsewhere
        explanations = {}
        if options.explain and explaining.flagged(comparison, explaining.TIMED_LABELS):
            workers = pools.take(1)
            try:
                explanations = explaining.explain_all_timed(workers, records, comparison, options.explain_calls,
                                                            trace_dir, options.profile, options.b.opts)
            finally:
                pools.give_back(workers)
    except SideError as exc:
        print(f"vitcnn ab: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if pools is not None:
            pools.close()
        for checkout in checkouts:
            checkout.close()
    wall_s = time.perf_counter() - started
    used = [r.processes for r in records if r.processes]
    spread = f"{min(used)}-{max(used)}" if used and min(used) != max(used) else str(used[0] if used else 0)
    comparison.notes.append(f"{len(records)} settings, {spread} processes per side ({options.rounds} rounds per "
                            f"stage, at most {options.processes}), {wall_s:.0f} s")
    print(verdicts.format_paired_table(comparison) + explaining.render_all(explanations), end="")
    for line in _write_outputs(options, hello, records, comparison, wall_s, explanations):
        print(line)
    print(f"vitcnn ab: {'FAILED' if comparison.has_regression else 'passed'}: {comparison.summary()}")
    return 1 if comparison.has_regression else 0


def _compare(options: ABOptions, records: list[SettingRecord], notes: list[str]) -> rules.Comparison:
    pairs = [rules.PairedInput(r.results["A"], r.results["B"], r.paired_blocks()) for r in records]
    return rules.compare_paired(pairs, rules.GateOptions(tolerance=options.threshold, alpha=options.alpha),
                                notes=notes, looks=options.looks, detect=options.detect,
                                by_machine=options.machine_time)
