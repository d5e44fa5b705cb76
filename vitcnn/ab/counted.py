"""Instructions per call of settings, counted in a worker under callgrind: for the pytest plugin and `vitcnn ab`.

`Counter` owns one side's counting worker (vitcnn/ab/worker.py started under callgrind, vitcnn/measure/
instructions.py) and, before it, a plain worker with the same environment that compiles each setting first:
compiling under valgrind would run inductor's Python code generation some ten times slower, while the plain worker
fills the inductor cache (same key: same environment, threads and graph) from which the counting worker then loads
the compiled graph. The plain worker counts the FLOPs and checks the compiled output against both references; the
counting worker (`--counting`: no FLOP count, references or check) traces and loads the graph, warms up with one
call and counts. Its compile-cache verdict (`instructions_compile_cache`, "hit": it loaded the plain worker's
compile, by a key that covers the graph, environment and threads) says that the counted graph is the checked one;
the plain worker's check is kept beside the count (`instructions_check_max_rel_err`).

`run` is `vitcnn ab --metric instructions`: one Counter per side, both sides counting each setting at the same
time (valgrind runs a process on one core at a time, and a count does not depend on what runs beside it), then
`rules.compare_counted`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from vitcnn.ab.sides import Checkout, Side, SideError, WorkerProcess
from vitcnn.measure import instructions
from vitcnn.runfile import Result, write_atomic
from vitcnn.settings import Setting, invalid_reason

if TYPE_CHECKING:
    from vitcnn.ab.driver import ABOptions

# A counting worker's own options: no warm-up time (its calls are uninstrumented valgrind calls; the minimum of
# warm-up calls still runs), no cold compile times, no eager twin.
COUNTING_OPTIONS = ("--vitcnn-warmup-seconds", "0", "--vitcnn-compile-times", "off", "--vitcnn-eager-twin", "off")


@dataclass
class Counted:
    """One setting counted on one side: status ("ok", "oom", "error", "skipped"), reason and the fields."""

    setting: Setting
    status: str
    reason: str | None = None
    info: dict | None = None

    def result(self) -> Result:
        return Result(self.setting, self.status, self.reason, extra=dict(self.info or {}))


class Counter:
    """One side's counting worker (under callgrind) and its plain compiling twin."""

    def __init__(self, side: Side, checkout: Checkout, worker_args: list[str], log_dir: Path,
                 calls: int = instructions.DEFAULT_CALLS) -> None:
        why_not = instructions.unavailable_reason()
        if why_not:
            raise SideError(why_not)
        self.calls, self.log_dir = calls, Path(log_dir)
        self.dumps = Path(tempfile.mkdtemp(prefix="vitcnn-callgrind-"))
        args = [*worker_args, *COUNTING_OPTIONS, "--vitcnn-threads", str(instructions.THREADS)]  # the last wins
        name = side.name.lower()
        plain = Side(side.name, side.python, {**instructions.COUNTED_ENV, **side.env}, side.ref, side.opts)
        self.compiler = WorkerProcess(plain, checkout, args, self.log_dir / f"{name}-compile.log")
        self.worker = WorkerProcess(side, checkout, [*args, "--counting"], self.log_dir / f"{name}-callgrind.log",
                                    self.dumps)

    def hello(self) -> dict:
        """Both workers' hello (they start at once); the counting worker's reply."""
        for worker in (self.compiler, self.worker):
            worker.send("hello")
        self.compiler.receive("hello")
        return self.worker.receive("hello")

    def close(self) -> None:
        for worker in (self.compiler, self.worker):
            worker.close()
        for dump in self.dumps.glob("*"):
            dump.unlink()
        self.dumps.rmdir()


def count_all(counters: dict[str, Counter], rows: list[dict[str, Setting]]) -> Iterator[dict[str, Counted]]:
    """Count every row's settings, `row[name]` with `counters[name]`, yielding each row's Counted by name.

    Each stage is sent to every side before any reply is read, so the sides work at once; and the plain workers
    compile the next row while the counting workers load and count this one."""

    def compile_start(row: dict[str, Setting]) -> None:
        for name, setting in row.items():
            counters[name].compiler.send("setup", setting=setting.as_dict())

    def compile_finish(row: dict[str, Setting]) -> dict[str, dict]:
        replies = {name: counters[name].compiler.receive("setup") for name in row}
        for name in row:
            counters[name].compiler.send("free")
        for name in row:
            counters[name].compiler.receive("free")
        return replies

    def stage(names: list[str], cmd: str, **fields) -> dict[str, dict]:
        for name in names:
            counters[name].worker.send(cmd, **{k: (v(name) if callable(v) else v) for k, v in fields.items()})
        return {name: counters[name].worker.receive(cmd) for name in names}

    if rows:
        compile_start(rows[0])
    for i, row in enumerate(rows):
        done: dict[str, Counted] = {}

        def failed(replies: dict[str, dict]) -> list[str]:
            for name, reply in replies.items():
                if reply["status"] != "ok":
                    done[name] = Counted(row[name], reply["status"], reply.get("reason"))
            return [name for name in replies if name not in done]

        compiled = compile_finish(row)
        ready = failed(compiled)
        for name in ready:
            counters[name].worker.send("setup", setting=row[name].as_dict())
        if i + 1 < len(rows):
            compile_start(rows[i + 1])
        loaded = failed({name: counters[name].worker.receive("setup") for name in ready})
        counts = stage(loaded, "count", calls=lambda name: counters[name].calls)
        for name in failed(counts):
            reply = counts[name]
            done[name] = Counted(row[name], "ok", None, counted_info(compiled[name]["info"], reply))
        stage(ready, "free")
        yield done


def counted_info(checked: dict, reply: dict) -> dict:
    """A counted setting's info: the plain worker's (FLOPs, the compiled output's check), the counting worker's on
    top, its count, and the counting worker's compile-cache verdict (a hit: it loaded the graph that was checked)."""
    return {**checked, **reply["info"], **reply["counted"],
            "instructions_compile_cache": reply["info"]["compile_cache"],
            "instructions_check_max_rel_err": checked.get("check_max_rel_err")}


def counted_fields(counted: Counted) -> dict:
    """What the pytest plugin adds to a timed setting's extra_info from its count (an error is kept, not raised:
    the timing stands)."""
    if counted.status != "ok" or counted.info is None:
        return {"instructions_per_call": None, "instructions_error": f"{counted.status}: {counted.reason}"}
    keys = ("instructions_per_call", "instructions_calls", "instructions_source", "instructions_compile_cache",
            "instructions_check_max_rel_err")
    return {**{k: counted.info.get(k) for k in keys}, "instructions_error": None}


def run(options: ABOptions) -> int:
    """`vitcnn ab --metric instructions`; exit 0 (no regression), 1 (a regression), 2 (a side cannot start)."""
    from vitcnn.ab.driver import session_worker_args, sides_json, verdict_json
    from vitcnn.gate import rules, verdicts

    started = time.perf_counter()
    logs = Path(tempfile.mkdtemp(prefix="vitcnn-ab-logs-"))
    worker_args = session_worker_args(options)
    checkouts: list[Checkout] = []
    counters: dict[str, Counter] = {}
    try:
        for side in (options.a, options.b):
            checkout = Checkout(side.ref)
            checkouts.append(checkout)
            counters[side.name] = Counter(side, checkout, worker_args, logs)
        hello = {name: counter.hello() for name, counter in counters.items()}
        for name, side in (("A", options.a), ("B", options.b)):
            fp = hello[name]["machine_info"]["vitcnn_fingerprint"]
            print(f"vitcnn ab: side {name}: {hello[name]['python']} under callgrind (pid {hello[name]['pid']}), "
                  f"vitcnn from {f'ref {side.ref}' if side.ref else hello[name]['cwd']}, torch {fp['torch']}, "
                  f"logs in {logs}", file=sys.stderr, flush=True)
        device_type = hello["A"]["machine_info"]["vitcnn_fingerprint"]["device"]
        if device_type != "cpu":
            raise SideError("instructions are counted on the CPU only (valgrind cannot see a GPU's work): add "
                            "--device cpu")
        overrides = {"A": options.a.axis_overrides(), "B": options.b.axis_overrides()}
        records, rows = [], []
        for setting in options.settings:
            record, row = {}, {}
            for name in "AB":
                mine = replace(setting, **overrides[name])
                why_not = invalid_reason(mine, device_type)
                if why_not:
                    record[name] = Counted(mine, "skipped", why_not)
                else:
                    row[name] = mine
            records.append(record)
            rows.append(row)
        for i, (record, done) in enumerate(zip(records, count_all(counters, rows)), 1):
            record.update(done)
            print(f"vitcnn ab: [{i}/{len(records)}] {options.settings[i - 1].id}: "
                  + ", ".join(f"{n} " + (f"{c.info['instructions_per_call'] / 1e6:,.2f}M instructions per call"
                                         if c.status == "ok" else c.status) for n, c in sorted(record.items()))
                  + f" ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    except SideError as exc:
        print(f"vitcnn ab: error: {exc}", file=sys.stderr)
        return 2
    finally:
        for counter in counters.values():
            counter.close()
        for checkout in checkouts:
            checkout.close()
    wall_s = time.perf_counter() - started
    gate = rules.GateOptions(instructions_tolerance=options.instructions_tolerance)
    comparison = rules.compare_counted([(r["A"].result(), r["B"].result()) for r in records], gate,
                                       notes=[f"{len(records)} settings, {wall_s:.0f} s"])
    print(verdicts.format_counted_table(comparison), end="")
    if options.markdown:
        options.markdown.parent.mkdir(parents=True, exist_ok=True)
        options.markdown.write_text(verdicts.counted_markdown(comparison))
    if options.json_path:
        by_id = {v.id: v for v in comparison.verdicts}
        write_atomic(options.json_path, {
            "schema": 1, "metric": "instructions", "profile": options.profile, "wall_s": wall_s,
            "options": {"instructions_tolerance": options.instructions_tolerance, "device": options.device,
                        "threads": options.threads},
            "sides": sides_json(options, hello),
            "settings": [{"id": r["A"].setting.id, "a_id": r["A"].setting.id, "b_id": r["B"].setting.id,
                          "status": {n: r[n].status for n in "AB"},
                          "counted": {n: counted_fields(r[n]) for n in "AB"},
                          "verdict": verdict_json(by_id[r["A"].setting.id])} for r in records]})
    print(f"vitcnn ab: {'FAILED' if comparison.has_regression else 'passed'}: {comparison.summary()}")
    return 1 if comparison.has_regression else 0
