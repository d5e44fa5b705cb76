"""A worker: a long-lived process that measures one setting at a time, a block at a time.

Started as `python -m vitcnn.workers.worker [--vitcnn-* options] [-p MODULE]` (vitcnn/workers/process.py) with a
side's interpreter, environment and checkout: by `vitcnn ab` for its sides, and in pairs for instruction counts
(vitcnn/workers/counting.py). Protocol: one JSON object per line on stdin, one reply per line
on stdout (anything else the process prints goes to stderr, so library chatter cannot corrupt the channel):

  {"cmd": "hello"}                     -> {"ok": true, "machine_info": {...}, "python": ..., "env": {...},
                                          "commands": [...]} (a worker of an older checkout lists none)
  {"cmd": "setup", "setting": {...}, "count_flops": b}
                                       -> {"ok": true, "status": "ok", "per_call_s": s, "info": {...}} | status
                                          "oom"/"error" (count_flops false: its FLOP fields empty)
  {"cmd": "calibrate", "seconds": s}   -> {"ok": true, "status": "ok", "per_call_s": s} (calls timed alone, kept
                                          nowhere: what the session sizes its blocks and lead-ins from)
  {"cmd": "block", "calls": n}         -> {"ok": true, "status": "ok", "samples": [s, ...], "host": {...}} | status
                                          "oom"/"error"
  {"cmd": "count", "calls": n, "keep_dump": b}
                                       -> {"ok": true, "status": "ok", "counted": {...}, "info": {...}} (only in a
                                          process started under callgrind: vitcnn/measure/instructions.py)
  {"cmd": "profile", "calls": n, "trace": path|null}
                                       -> {"ok": true, "status": "ok", "profile": {...}, "compile_phases": {...},
                                          "compiled": {...}} (vitcnn/explain/ops.py; after the timed blocks)
  {"cmd": "finish"}                    -> {"ok": true, "status": ..., "reason": ..., "info": {...}, "samples": [...]}
  {"cmd": "free"}                      -> {"ok": true}
  {"cmd": "quit"}                      -> (exits)
A request the worker cannot serve gets {"ok": false, "error": "..."}. Setup, blocks and finish are the stages of
vitcnn.measure.Prepared, the same code `measure` (and so pytest) composes: no second harness.
"""

from __future__ import annotations

import gc
import importlib
import json
import math
import os
import platform
import statistics
import sys
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import torch
from pytest_benchmark.plugin import pytest_benchmark_generate_machine_info

import vitcnn
from vitcnn.explain import ops
from vitcnn.fingerprint import machine_fields
from vitcnn.measure import allocator, compiling, instructions, pipeline
from vitcnn.measure.options import for_profile
from vitcnn.measure.timing import gc_paused, warm_up
from vitcnn.options import argparse_options, measure_options, option_value
from vitcnn.settings import Setting, default_profile

REPORTED_ENV = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "PYTHONPATH")


# The untimed lead-in of every block lasts at least this long: longer than libgomp's default spin after a parallel
# region (GOMP_SPINCOUNT 300,000 pauses, a few ms), so the other side's threads are asleep before timing starts,
# and long enough to refill the caches the other side evicted.
LEAD_IN_SECONDS = 0.02


def lead_in_calls(per_call_s: float) -> int:
    """Untimed calls before a block's timed calls: at least one, and at least LEAD_IN_SECONDS of them."""
    return max(1, math.ceil(LEAD_IN_SECONDS / per_call_s)) if per_call_s > 0 else 1


class Worker:
    """The state of one side: its options and the setting prepared now (at most one)."""

    def __init__(self, argv: list[str]) -> None:
        parser = argparse_options("vitcnn.ab.worker")
        parser.add_argument("--counting", action="store_true",
                            help="a counting worker under callgrind (vitcnn/ab/counted.py): no FLOP count, references "
                                 "or check (a plain worker compiled and checked the graph), one warm-up call")
        namespace = parser.parse_args(argv)
        for name in namespace.plugins:  # test-only hooks, as `pytest -p MODULE` loads them in the plugin
            hook = getattr(importlib.import_module(name), "pytest_configure", None)
            if hook is not None:
                hook(None)
        if namespace.vitcnn_threads:
            torch.set_num_threads(namespace.vitcnn_threads)
        allocator.apply(namespace.vitcnn_malloc)  # as the plugin does: hello's fingerprint records it
        self.device = torch.device(namespace.vitcnn_device or ("cuda" if torch.cuda.is_available() else "cpu"))
        options = measure_options(lambda option: option_value(namespace, option))
        # Cold compiles and the eager twin repeat in every process of both sides (~20 s per compiled setting and
        # process on 2 cores): off in A/B unless a side's options turn them on.
        options = replace(options, compile_times=bool(options.compile_times), eager_twin=bool(options.eager_twin))
        self.options = for_profile(options, namespace.vitcnn_profile or default_profile(self.device.type).name)
        if namespace.counting:
            self.options = replace(self.options, checks=False, warmup_calls=1, warmup_seconds=0.0)
        self.setting: Setting | None = None
        self.compile_phases: dict[str, float] = {}  # of the last setup (compiling.phase_delta)
        self.prepared: pipeline.Prepared | None = None
        self.gc_pause = ExitStack()  # the cyclic GC stays paused from a setup to its free, not collected per block

    def hello(self, request: dict) -> dict:
        machine_info = {**pytest_benchmark_generate_machine_info(), **machine_fields(self.device)}
        return {"ok": True, "machine_info": machine_info, "python": sys.executable, "pid": os.getpid(),
                "platform": platform.platform(), "torch_threads": torch.get_num_threads(),
                "env": {k: os.environ.get(k) for k in REPORTED_ENV}, "cwd": os.getcwd(),
                "vitcnn": os.path.dirname(vitcnn.__file__), "commands": sorted(handlers(self))}

    def setup(self, request: dict) -> dict:
        self.free({})
        self.setting = Setting.from_dict(request["setting"])
        options = replace(self.options, count_flops=self.options.count_flops and request.get("count_flops", True))
        phases = compiling.phase_seconds()
        try:
            self.prepared = pipeline.prepare(self.setting, self.device, options)
        except Exception as exc:
            return self._failed(exc)
        self.compile_phases = compiling.phase_delta(phases, compiling.phase_seconds())
        self.gc_pause.enter_context(gc_paused())
        return {"ok": True, "status": "ok", "per_call_s": self.prepared.per_call_s, "info": self.prepared.info}

    def calibrate(self, request: dict) -> dict:
        """The prepared setting's time per call, timed now for `seconds` while no other process runs (the setup's
        warm-up ran beside the other processes' setups: ~3x slow on 2 cores); later lead-ins follow it. The calls
        are kept nowhere; the first of them refills what another process evicted."""
        if self.prepared is None:
            return {"ok": False, "error": "calibrate before a successful setup"}
        try:
            with gc_paused():  # a no-op inside the setting's own pause
                timed = warm_up(self.prepared.call, 4, float(request["seconds"]))[1:]
        except Exception as exc:
            return self._failed(exc)
        self.prepared.per_call_s = statistics.median(timed)
        return {"ok": True, "status": "ok", "per_call_s": self.prepared.per_call_s}

    def block(self, request: dict) -> dict:
        """Time `calls` calls after an untimed lead-in (lead_in_calls); the reply has the block's host state."""
        if self.prepared is None:
            return {"ok": False, "error": "block before a successful setup"}
        try:
            samples = self.prepared.time_block(int(request["calls"]), untimed=lead_in_calls(self.prepared.per_call_s))
        except Exception as exc:
            return self._failed(exc)
        return {"ok": True, "status": "ok", "samples": samples, "host": self.prepared.host.blocks[-1]}

    def profile(self, request: dict) -> dict:
        """The prepared setting's calls under torch.profiler (vitcnn/explain/ops.py), a trace where asked for, and
        this setup's compile facts: what an explanation of a `slower` compares between the sides."""
        if self.prepared is None:
            return {"ok": False, "error": "profile before a successful setup"}
        try:
            trace = Path(request["trace"]) if request.get("trace") else None
            profiled = ops.profile_ops(self.prepared.call, self.device, int(request.get("calls", ops.DEFAULT_CALLS)),
                                       trace)
        except Exception as exc:
            return self._failed(exc)
        info = self.prepared.info
        return {"ok": True, "status": "ok", "profile": profiled, "compile_phases": self.compile_phases,
                "compiled": {k: info.get(k) for k in ("graphs", "graph_breaks", "graph_break_reasons",
                                                      "compile_time_s", "compile_cache")}}

    def count(self, request: dict) -> dict:
        """Instructions per call of the prepared setting (instructions.count), with the setting's info so far: its
        compile-cache verdict and reference check say which graph was counted."""
        if self.prepared is None:
            return {"ok": False, "error": "count before a successful setup"}
        try:
            counted = instructions.count(self.prepared.call, int(request.get("calls", instructions.DEFAULT_CALLS)),
                                         keep_dump=bool(request.get("keep_dump")))
        except Exception as exc:
            return self._failed(exc)
        return {"ok": True, "status": "ok", "counted": counted, "info": self.prepared.info}

    def finish(self, request: dict) -> dict:
        """Probe and memory after the last block, then free the model and derive MFU etc. (as measure does)."""
        if self.prepared is None or self.setting is None:
            return {"ok": False, "error": "finish before a successful setup"}
        prepared, setting = self.prepared, self.setting
        try:
            info = prepared.finish()
        except Exception as exc:
            return self._failed(exc)
        samples = list(prepared.samples)
        self.free({})
        result = pipeline.completed(setting, self.device, info, samples)
        return {"ok": True, "status": result.status, "reason": result.reason, "info": result.info,
                "samples": result.samples}

    def free(self, request: dict) -> dict:
        """Drop the setting; what is still alive then is the process's own (modules, caches): frozen, so that the
        collections of later setups and pauses scan only their setting's objects (0.27 s -> ~0 each here)."""
        self.gc_pause.close()
        if self.prepared is not None:
            self.prepared.close()
            self.prepared = None
        pipeline.free_memory()
        gc.freeze()
        return {"ok": True}

    def _failed(self, exc: Exception) -> dict:
        result = pipeline.failure(exc, self.setting)
        self.free({})
        return {"ok": True, "status": result.status, "reason": result.reason, "fatal": result.fatal}


def handlers(worker: Worker) -> dict:
    """The requests a worker serves, by command."""
    return {"hello": worker.hello, "setup": worker.setup, "calibrate": worker.calibrate, "block": worker.block,
            "count": worker.count, "profile": worker.profile, "finish": worker.finish, "free": worker.free}


def serve(worker: Worker, requests: TextIO, replies: TextIO) -> None:
    """Answer one request per line until "quit" or end of input."""
    served = handlers(worker)
    for line in requests:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            command = request["cmd"]
        except (ValueError, KeyError, TypeError) as exc:
            reply = {"ok": False, "error": f"bad request {line.strip()[:200]!r}: {exc}"}
        else:
            if command == "quit":
                return
            handler = served.get(command)
            reply = handler(request) if handler else {"ok": False, "error": f"unknown command {command!r}"}
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()


def main(argv: list[str] | None = None) -> int:
    # The protocol owns the original stdout; everything else that writes to fd 1 (inductor, C++ libraries) lands
    # on stderr instead.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        worker = Worker(sys.argv[1:] if argv is None else argv)
    except Exception as exc:
        replies.write(json.dumps({"ok": False, "error": f"worker cannot start: {type(exc).__name__}: {exc}"}) + "\n")
        replies.flush()
        return 2
    serve(worker, sys.stdin, replies)
    worker.free({})
    return 0


if __name__ == "__main__":
    sys.exit(main())
