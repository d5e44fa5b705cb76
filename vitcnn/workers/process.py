"""Starting a worker process (vitcnn/workers/worker.py) and speaking its protocol: one JSON request per line on its
stdin, one reply per line on its stdout, its stderr in a log file.

The worker runs with the interpreter asked for, in a checkout (vitcnn/workers/checkout.py: this project, or a
temporary `git worktree` of a ref), with PYTHONPATH starting at that checkout so its `vitcnn` is the one measured.
The OpenMP wait policy is left as a plain run has it (unless the caller sets it): libgomp then spins a few
milliseconds after a parallel region before it sleeps, and every block starts with an untimed lead-in longer than
that spin (worker.LEAD_IN_SECONDS), so an idle worker never spins into another worker's timed calls.
OMP_WAIT_POLICY=PASSIVE would also keep it quiet, but it puts every parallel region's threads to sleep and made a
ViT-T/16 call 3x slower on the 2-core VM: a regime nobody runs in (docs/results.md has the measurement).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from vitcnn.measure import instructions
from vitcnn.workers import SideError

if TYPE_CHECKING:
    from vitcnn.workers.checkout import Checkout


@dataclass(frozen=True)
class Launch:
    """How a worker is started: its name in messages and logs ("A", "counting-0"), its interpreter, environment
    overrides and vitcnn options."""

    name: str
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)
    opts: tuple[str, ...] = ()


class _Replying:
    """A process of a side that answers one JSON line per request and writes everything else to its log: a
    worker, or a worker template. A reply that never comes or says not ok is a SideError with the log's tail."""

    side: Launch
    log_path: Path
    role = "worker"

    def _exit_code(self) -> int | None:
        return None

    def _reply(self, line: str, cmd: str) -> dict:
        if not line:
            raise SideError(f"side {self.side.name}: the {self.role} exited (code {self._exit_code()}) during "
                            f"{cmd!r}; last lines of {self.log_path}:\n{self.log_tail()}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise SideError(f"side {self.side.name}: {reply.get('error')}\n{self.log_tail()}")
        return reply

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class RunningWorker(_Replying):
    """A running worker's channel: send a request, read its one-line reply; what it writes besides goes to its log.
    A worker is a fresh process (WorkerProcess) or a fork of a template (WorkerTemplate.fork)."""

    commands: frozenset[str] = frozenset()  # what it serves, from its hello (none from an older worker)

    def _channel(self) -> tuple[TextIO, TextIO]:
        """The worker's requests (written here) and replies (read here)."""
        raise NotImplementedError

    def request(self, cmd: str, **fields) -> dict:
        """Send one request and wait for the reply; a dead or confused worker is a SideError with its log's tail."""
        self.send(cmd, **fields)
        return self.receive(cmd)

    def send(self, cmd: str, **fields) -> None:
        """Send one request without waiting (receive reads the reply): several workers can then work at once."""
        try:
            requests = self._channel()[0]
            requests.write(json.dumps({"cmd": cmd, **fields}) + "\n")
            requests.flush()
        except (BrokenPipeError, OSError):
            pass  # receive reports the dead worker

    def receive(self, cmd: str) -> dict:
        try:
            line = self._channel()[1].readline()
        except OSError:
            line = ""
        reply = self._reply(line, cmd)
        if cmd == "hello":
            self.commands = frozenset(reply.get("commands", ()))
        return reply

    def close(self) -> None:
        raise NotImplementedError


def _environment(side: Launch, checkout: Checkout, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A side's process environment: its overrides, and PYTHONPATH starting at its checkout."""
    env = {**os.environ, **(extra or {}), **side.env}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(checkout.root), side.env.get("PYTHONPATH", ""),
                                                     os.environ.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class WorkerProcess(RunningWorker):
    """A worker in a process of its own, speaking on its stdin and stdout; its stderr goes to a log file.

    With `counting_dir` it runs under callgrind (vitcnn/measure/instructions.py) with the counting environment,
    its dumps in that directory, and can answer "count"."""

    def __init__(self, side: Launch, checkout: Checkout, worker_args: list[str], log_path: Path,
                 counting_dir: Path | None = None) -> None:
        self.side, self.log_path = side, log_path
        env = _environment(side, checkout, instructions.environment(counting_dir) if counting_dir else None)
        self.log = open(log_path, "w")
        argv = [side.python, "-m", checkout.worker_module, *worker_args, *side.opts]
        try:
            self.process = subprocess.Popen(instructions.command(argv, counting_dir) if counting_dir else argv,
                                            cwd=checkout.root, env=env, stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1)
        except OSError as exc:
            self.log.close()
            raise SideError(f"side {side.name}: cannot start {side.python!r}: {exc.strerror or exc}") from None

    def _channel(self) -> tuple[TextIO, TextIO]:
        return self.process.stdin, self.process.stdout

    def _exit_code(self) -> int | None:
        return self.process.poll()

    def log_tail(self, lines: int = 15) -> str:
        self.log.flush()
        return super().log_tail(lines)

    def close(self) -> None:
        _stop(self.process, self._ask_to_quit)
        self.log.close()

    def _ask_to_quit(self) -> None:
        self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
        self.process.stdin.flush()


def _stop(process: subprocess.Popen, quit_request: Callable[[], object]) -> None:
    """Ask a process that still runs to quit; kill it if it cannot be asked or takes over a minute."""
    if process.poll() is None:
        try:
            quit_request()
            process.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()


class WorkerTemplate(_Replying):
    """A side's worker template (vitcnn/workers/template.py): one process that imported torch and the side's vitcnn,
    forking a fresh worker per `fork` in milliseconds. Its own output goes to `log_path`."""

    role = "worker template"

    def __init__(self, side: Launch, checkout: Checkout, worker_args: list[str], log_path: Path) -> None:
        self.side, self.log_path = side, log_path
        self.control, theirs = socket.socketpair()
        self.log = open(log_path, "w")
        argv = [side.python, str(TEMPLATE_PROGRAM), str(theirs.fileno()), checkout.worker_module, *worker_args,
                *side.opts]
        try:
            self.process = subprocess.Popen(argv, cwd=checkout.root, env=_environment(side, checkout),
                                            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                            pass_fds=(theirs.fileno(),))
        except OSError as exc:
            self.log.close()
            self.control.close()
            raise SideError(f"side {side.name}: cannot start {side.python!r}: {exc.strerror or exc}") from None
        finally:
            theirs.close()
        self.replies = self.control.makefile("r")
        self._reply(self.replies.readline(), "start")

    def _exit_code(self) -> int | None:
        return self.process.poll()

    def log_tail(self, lines: int = 15) -> str:
        self.log.flush()
        return super().log_tail(lines)

    def fork(self, log_path: Path) -> ForkedWorker:
        """A fresh worker forked from the template, speaking on a socket of its own; its output in log_path."""
        ours, theirs = socket.socketpair()
        try:
            socket.send_fds(self.control, [(json.dumps({"cmd": "fork", "log": str(log_path)}) + "\n").encode()],
                            [theirs.fileno()])
        except OSError:
            ours.close()
            raise SideError(f"side {self.side.name}: the worker template is gone; last lines of {self.log_path}:\n"
                            f"{self.log_tail()}") from None
        finally:
            theirs.close()
        pid = self._reply(self.replies.readline(), "fork")["pid"]
        return ForkedWorker(self.side, ours, pid, log_path)

    def close(self) -> None:
        _stop(self.process, lambda: self.control.sendall(json.dumps({"cmd": "quit"}).encode() + b"\n"))
        self.replies.close()
        self.control.close()
        self.log.close()


class ForkedWorker(RunningWorker):
    """A worker forked from a WorkerTemplate: the worker protocol on a socket; quits (and exits) on close."""

    def __init__(self, side: Launch, channel: socket.socket, pid: int, log_path: Path) -> None:
        self.side, self.log_path, self.pid, self.socket = side, log_path, pid, channel
        self.files = (channel.makefile("w"), channel.makefile("r"))

    def _channel(self) -> tuple[TextIO, TextIO]:
        return self.files

    def close(self) -> None:
        """Ask the fork to quit; it exits once its channel closes, whatever it was doing."""
        self.send("quit")
        for file in self.files:
            try:
                file.close()
            except OSError:
                pass
        self.socket.close()


TEMPLATE_PROGRAM = Path(__file__).with_name("template.py")
