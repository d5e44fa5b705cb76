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
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

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


class WorkerProcess:
    """A running worker: send a request, read its one-line reply. Its stderr goes to a log file.

    With `counting_dir` it runs under callgrind (vitcnn/measure/instructions.py) with the counting environment,
    its dumps in that directory, and can answer "count"."""

    def __init__(self, side: Launch, checkout: Checkout, worker_args: list[str], log_path: Path,
                 counting_dir: Path | None = None) -> None:
        self.side, self.log_path = side, log_path
        self.commands: frozenset[str] = frozenset()  # what it serves, from its hello (none from an older worker)
        env = {**os.environ, **(instructions.environment(counting_dir) if counting_dir else {}), **side.env}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(checkout.root), side.env.get("PYTHONPATH", ""),
                                                         os.environ.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        self.log = open(log_path, "w")
        argv = [side.python, "-m", checkout.worker_module, *worker_args, *side.opts]
        try:
            self.process = subprocess.Popen(instructions.command(argv, counting_dir) if counting_dir else argv,
                                            cwd=checkout.root, env=env, stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1)
        except OSError as exc:
            self.log.close()
            raise SideError(f"side {side.name}: cannot start {side.python!r}: {exc.strerror or exc}") from None

    def request(self, cmd: str, **fields) -> dict:
        """Send one request and wait for the reply; a dead or confused worker is a SideError with its log's tail."""
        self.send(cmd, **fields)
        return self.receive(cmd)

    def send(self, cmd: str, **fields) -> None:
        """Send one request without waiting (receive reads the reply): several workers can then work at once."""
        try:
            self.process.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # receive reports the dead worker

    def receive(self, cmd: str) -> dict:
        try:
            line = self.process.stdout.readline()
        except OSError:
            line = ""
        if not line:
            raise SideError(f"side {self.side.name}: the worker exited (code {self.process.poll()}) during "
                            f"{cmd!r}; last lines of {self.log_path}:\n{self.log_tail()}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise SideError(f"side {self.side.name}: {reply.get('error')}\n{self.log_tail()}")
        if cmd == "hello":
            self.commands = frozenset(reply.get("commands", ()))
        return reply

    def log_tail(self, lines: int = 15) -> str:
        self.log.flush()
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.process.stdin.flush()
                self.process.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self.log.close()
