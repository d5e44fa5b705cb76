"""A worker template: a process that imports torch and the side's vitcnn once, builds a worker, and then only
forks: one fresh worker (vitcnn/workers/worker.py) per request. `vitcnn ab` sets every setting up in new forks: a
worker that had run other settings before ran a setting up to several % off its twins for as long as it held it
(docs/results.md, "Process history"), and a fork starts from the template's clean state in milliseconds, where a new
interpreter takes seconds to import torch.

Started as `python .../vitcnn/workers/template.py FD MODULE [worker options]` with PYTHONPATH at the side's checkout:
MODULE is that checkout's worker program (checkout.Checkout.worker_module), whose Worker and serve the forks run; FD
is the template's end of a Unix socket pair (vitcnn/workers/process.py). A request on it is one JSON line
{"cmd": "fork", "log": path} with one socket attached (SCM_RIGHTS), the fork's channel for the worker protocol;
reply {"ok": true, "pid": n}. {"cmd": "quit"} or the end of input exits.

The template never runs a torch operator: OpenMP starts its threads at the first parallel region, so none is lost
across a fork (the threads that importing torch leaves, waiting on futexes, are not it). It asks CUDA nothing
(PYTORCH_NVML_BASED_CUDA_CHECK: torch.cuda.is_available() reads NVML instead), so a fork could still use it; `vitcnn
ab` forks on CPU only until a GPU has run it.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import socket
import sys
from types import ModuleType

if __name__ == "__main__" and sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]  # run as a file: its folder must not shadow top-level modules; vitcnn comes from PYTHONPATH

os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")

# What a worker's first setup imports (about 2,200 modules: timm and what it pulls in, dynamo, inductor and sympy,
# the profiler): imported once here, not again in every fork (2-4 s per fork and setting on 2 cores otherwise).
PRELOAD = ("timm", "torch._dynamo", "torch._inductor.compile_fx", "torch._inductor.codecache",
           "torch.utils.flop_counter", "torch.profiler")


def forked(program: ModuleType, worker: object, channel: socket.socket, log: str) -> None:
    """In the fork: stdout and stderr into its log, the worker protocol on its channel until it closes (the caller
    exits the fork then: nothing to free)."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    with channel.makefile("r") as requests, channel.makefile("w") as replies:
        program.serve(worker, requests, replies)


def main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[0]))
    replies = control.makefile("w")
    try:
        program = importlib.import_module(argv[1])
        worker = program.Worker(argv[2:])
        for name in PRELOAD:
            importlib.import_module(name)
        gc.freeze()  # what every fork inherits is never scanned by its collections (nor copied by them)
    except Exception as exc:
        replies.write(json.dumps({"ok": False, "error": f"template cannot start: {type(exc).__name__}: {exc}"}) + "\n")
        replies.flush()
        return 2
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forks are reaped by the kernel
    replies.write(json.dumps({"ok": True, "pid": os.getpid()}) + "\n")
    replies.flush()
    while True:
        message, fds, _, _ = socket.recv_fds(control, 65536, 1)
        if not message:
            return 0
        if not message.endswith(b"\n"):
            for fd in fds:
                os.close(fd)
            replies.write(json.dumps({"ok": False, "error": "a fork request must come in one message"}) + "\n")
            replies.flush()
            continue
        request = json.loads(message)
        if request.get("cmd") == "quit":
            return 0
        if request.get("cmd") != "fork" or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            replies.write(json.dumps({"ok": False, "error": f"bad template request {request!r}"}) + "\n")
            replies.flush()
            continue
        channel = socket.socket(fileno=fds[0])
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                replies.close()
                control.close()
                forked(program, worker, channel, request["log"])
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        channel.close()
        replies.write(json.dumps({"ok": True, "pid": pid}) + "\n")
        replies.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
