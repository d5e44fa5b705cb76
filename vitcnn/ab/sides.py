"""A side of `vitcnn ab` (interpreter, environment, git ref, vitcnn options) and the worker process that is it.

The worker runs `python -m vitcnn.ab.worker` with the side's interpreter, in the side's checkout (this one, or a
temporary `git worktree` of `--a-ref`/`--b-ref`, removed afterwards), with PYTHONPATH starting at that checkout so
its `vitcnn` is the one measured. The OpenMP wait policy is left as a plain run has it (unless a side sets it):
libgomp then spins a few milliseconds after a parallel region before it sleeps, and every block starts with an
untimed lead-in longer than that spin (worker.LEAD_IN_SECONDS), so an idle worker never spins into the other
side's timed calls. OMP_WAIT_POLICY=PASSIVE would also keep it quiet, but it puts every parallel region's threads
to sleep and made a ViT-T/16 call 3x slower on the 2-core VM: a regime nobody runs in (docs/results.md has the
measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from vitcnn.measure import instructions
from vitcnn.options import AXIS_OPTIONS, argparse_options

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WORKER_MODULE = "vitcnn.ab.worker"
# A side's options that choose what is measured and how long: the rest (gate, baseline, report, shard) belong to
# a pytest session, not to one side of an A/B.
SIDE_OPTIONS = (*AXIS_OPTIONS, "--vitcnn-target-seconds", "--vitcnn-warmup-seconds", "--vitcnn-min-rounds",
                "--vitcnn-max-rounds", "--vitcnn-no-inference-mode", "--vitcnn-threads", "--vitcnn-device",
                "--vitcnn-compile-times", "--vitcnn-eager-twin")


class SideError(ValueError):
    """A side that is asked for wrongly, or whose worker cannot start or stops answering."""


@dataclass(frozen=True)
class Side:
    """How to run one side: its name ("A"/"B"), interpreter, env overrides, git ref and vitcnn options."""

    name: str
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)
    ref: str | None = None
    opts: tuple[str, ...] = ()

    def axis_overrides(self) -> dict[str, str]:
        """Setting fields this side's options replace, e.g. {"sdpa": "math"} from --vitcnn-sdpa=math."""
        namespace = parse_side_opts(self.opts, self.name)
        field_of = {"models": "model", "resolutions": "resolution", "batches": "batch", "precisions": "precision",
                    "sdpa": "sdpa", "compile_modes": "compile_mode", "layouts": "layout"}
        overrides = {}
        for option, (axis, parse) in AXIS_OPTIONS.items():
            value = getattr(namespace, option[2:].replace("-", "_"))
            if value is None:
                continue
            values = [v.strip() for v in value.split(",") if v.strip()]
            if len(values) != 1:
                raise SideError(f"side {self.name}: {option} must name one value in a side's options (it replaces "
                                f"that field of every setting), got {value!r}")
            try:
                overrides[field_of[axis]] = parse(values[0])
            except ValueError as exc:
                raise SideError(f"side {self.name}: {option}: {exc}") from None
        return overrides


def parse_env(pairs: list[str], side: str) -> dict[str, str]:
    """NAME=VALUE strings into a dict; a malformed one is a SideError."""
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not name.replace("_", "a").isalnum():
            raise SideError(f"--{side.lower()}-env expects NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def parse_side_opts(opts: tuple[str, ...] | list[str], side: str) -> argparse.Namespace:
    """A side's options, read by the plugin's own option definitions; options outside SIDE_OPTIONS are refused."""
    parser = argparse_options(f"--{side.lower()}-opts")
    try:
        namespace, unknown = parser.parse_known_args(list(opts))
    except (argparse.ArgumentError, SystemExit) as exc:
        raise SideError(f"--{side.lower()}-opts: {exc}") from None
    if unknown:
        raise SideError(f"--{side.lower()}-opts: unknown option(s) {' '.join(unknown)}")
    defaults = parser.parse_args([])
    for action in parser._actions:
        option = max(action.option_strings, key=len) if action.option_strings else None
        if option and option not in SIDE_OPTIONS and option != "-p" and \
                getattr(namespace, action.dest) != getattr(defaults, action.dest):
            raise SideError(f"--{side.lower()}-opts: {option} is not a measurement option of one side; "
                            f"allowed: -p MODULE, {', '.join(SIDE_OPTIONS)}")
    return namespace


def split_opts(text: str | None) -> tuple[str, ...]:
    return tuple(shlex.split(text)) if text else ()


class Checkout:
    """The directory a side runs from: this project, or a temporary git worktree of `ref` (removed on close).
    `vitcnn history run` checks out the commits it backfills with it too, without the worker check."""

    def __init__(self, ref: str | None, repo: Path = PROJECT_ROOT, needs_worker: bool = True) -> None:
        self.ref, self.repo, self.temp = ref, repo, None
        self.root = repo
        if ref is None:
            return
        self.temp = Path(tempfile.mkdtemp(prefix="vitcnn-ab-"))
        self.root = self.temp / "checkout"
        done = subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(self.root), ref],
                              capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(self.temp, ignore_errors=True)
            raise SideError(f"cannot check out {ref!r}: {done.stderr.strip() or done.stdout.strip()}")
        if needs_worker and not (self.root / "vitcnn" / "ab" / "worker.py").is_file():
            self.close()
            raise SideError(f"{ref!r} has no vitcnn/ab/worker.py: it predates `vitcnn ab`, so it cannot be a side")

    def close(self) -> None:
        if self.temp is None:
            return
        subprocess.run(["git", "-C", str(self.repo), "worktree", "remove", "--force", str(self.root)],
                       capture_output=True, text=True)
        shutil.rmtree(self.temp, ignore_errors=True)
        self.temp = None


class WorkerProcess:
    """A running worker: send a request, read its one-line reply. Its stderr goes to a log file.

    With `counting_dir` it runs under callgrind (vitcnn/measure/instructions.py) with the counting environment,
    its dumps in that directory, and can answer "count"."""

    def __init__(self, side: Side, checkout: Checkout, worker_args: list[str], log_path: Path,
                 counting_dir: Path | None = None) -> None:
        self.side, self.log_path = side, log_path
        env = {**os.environ, **(instructions.environment(counting_dir) if counting_dir else {}), **side.env}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(checkout.root), side.env.get("PYTHONPATH", ""),
                                                         os.environ.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        self.log = open(log_path, "w")
        argv = [side.python, "-m", WORKER_MODULE, *worker_args, *side.opts]
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
