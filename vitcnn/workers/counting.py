"""Instructions per call of settings, counted in a worker under callgrind: for the pytest plugin and `vitcnn ab`.

`Counter` owns one side's counting worker (vitcnn/workers/worker.py started under callgrind, vitcnn/measure/
instructions.py) and, before it, a plain worker with the same environment that compiles each setting first:
compiling under valgrind would run inductor's Python code generation some ten times slower, while the plain worker
fills the inductor cache (same key: same environment, threads and graph) from which the counting worker then loads
the compiled graph. The plain worker counts the FLOPs and checks the compiled output against both references; the
counting worker (`--counting`: no FLOP count, references or check) traces and loads the graph, warms up with one
call and counts. Its compile-cache verdict (`instructions_compile_cache`, "hit": it loaded the plain worker's
compile, by a key that covers the graph, environment and threads) says that the counted graph is the checked one;
the plain worker's check is kept beside the count (`instructions_check_max_rel_err`).

`count_all` counts rows of settings with several Counters at once (valgrind runs a process on one core at a time,
and a count does not depend on what runs beside it): `vitcnn ab --metric instructions` (vitcnn/ab/counted.py) has
one Counter per side, the plugin one per core.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from vitcnn.measure import instructions
from vitcnn.result import Result
from vitcnn.settings import Setting
from vitcnn.workers import SideError
from vitcnn.workers.checkout import Checkout
from vitcnn.workers.process import Launch, WorkerProcess

# A counting worker's own options: no warm-up time (its calls are uninstrumented valgrind calls; the minimum of
# warm-up calls still runs), no cold compile times, no eager twin.
COUNTING_OPTIONS = ("--vitcnn-warmup-seconds", "0", "--vitcnn-compile-times", "off", "--vitcnn-eager-twin", "off")


class Counter:
    """One side's counting worker (under callgrind) and its plain compiling twin."""

    def __init__(self, side: Launch, checkout: Checkout, worker_args: list[str], log_dir: Path,
                 calls: int = instructions.DEFAULT_CALLS) -> None:
        why_not = instructions.unavailable_reason()
        if why_not:
            raise SideError(why_not)
        self.calls, self.log_dir = calls, Path(log_dir)
        self.dumps = Path(tempfile.mkdtemp(prefix="vitcnn-callgrind-"))
        args = [*worker_args, *COUNTING_OPTIONS, "--vitcnn-threads", str(instructions.THREADS)]  # the last wins
        name = side.name.lower()
        plain = replace(side, env={**instructions.COUNTED_ENV, **side.env})
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


def count_all(counters: dict[str, Counter], rows: list[dict[str, Setting]], keep_dumps: bool = False
              ) -> Iterator[dict[str, Result]]:
    """Count every row's settings, `row[name]` with `counters[name]`, yielding each row's Results by name (a
    counted one carries its count in its info: counted_info; with `keep_dumps`, the path of its callgrind dump,
    which stays until the Counter is closed).

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
        done: dict[str, Result] = {}

        def failed(replies: dict[str, dict]) -> list[str]:
            for name, reply in replies.items():
                if reply["status"] != "ok":
                    done[name] = Result(row[name], reply["status"], reply.get("reason"))
            return [name for name in replies if name not in done]

        compiled = compile_finish(row)
        ready = failed(compiled)
        for name in ready:
            counters[name].worker.send("setup", setting=row[name].as_dict())
        if i + 1 < len(rows):
            compile_start(rows[i + 1])
        loaded = failed({name: counters[name].worker.receive("setup") for name in ready})
        counts = stage(loaded, "count", calls=lambda name: counters[name].calls, keep_dump=keep_dumps)
        for name in failed(counts):
            reply = counts[name]
            done[name] = Result(row[name], "ok", info=counted_info(compiled[name]["info"], reply))
        stage(ready, "free")
        yield done


def counted_info(checked: dict, reply: dict) -> dict:
    """A counted setting's info: the plain worker's (FLOPs, the compiled output's check), the counting worker's on
    top, its count, and the counting worker's compile-cache verdict (a hit: it loaded the graph that was checked)."""
    return {**checked, **reply["info"], **reply["counted"],
            "instructions_compile_cache": reply["info"]["compile_cache"],
            "instructions_check_max_rel_err": checked.get("check_max_rel_err")}


def counted_fields(counted: Result) -> dict:
    """What the pytest plugin adds to a timed setting's extra_info from its count (an error is kept, not raised:
    the timing stands)."""
    if counted.status != "ok" or not counted.info:
        return {"instructions_per_call": None, "instructions_error": f"{counted.status}: {counted.reason}"}
    keys = ("instructions_per_call", "instructions_calls", "instructions_source", "instructions_compile_cache",
            "instructions_check_max_rel_err")
    return {**{k: counted.info.get(k) for k in keys}, "instructions_error": None}
