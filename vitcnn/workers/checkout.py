"""The directory a worker runs from: this project, or a temporary `git worktree` of a ref, removed afterwards."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from vitcnn.workers import SideError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The worker program, newest home first: a checkout of an older commit has it where that commit put it.
WORKER_MODULES = ("vitcnn.workers.worker", "vitcnn.ab.worker")


class Checkout:
    """The directory a side runs from: this project, or a temporary git worktree of `ref` (removed on close).
    `vitcnn history run` checks out the commits it backfills with it too, without the worker check.

    `worker_module` is the worker program that checkout has: vitcnn/workers/worker.py, or in a commit from before
    the workers package, vitcnn/ab/worker.py (the same protocol), so an A/B can measure an older ref."""

    def __init__(self, ref: str | None, repo: Path = PROJECT_ROOT, needs_worker: bool = True) -> None:
        self.ref, self.repo, self.temp = ref, repo, None
        self.root = repo
        self.worker_module = WORKER_MODULES[0]
        if ref is None:
            return
        self.temp = Path(tempfile.mkdtemp(prefix="vitcnn-ab-"))
        self.root = self.temp / "checkout"
        done = subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(self.root), ref],
                              capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(self.temp, ignore_errors=True)
            raise SideError(f"cannot check out {ref!r}: {done.stderr.strip() or done.stdout.strip()}")
        found = [m for m in WORKER_MODULES if (self.root / (m.replace(".", "/") + ".py")).is_file()]
        if found:
            self.worker_module = found[0]
        elif needs_worker:
            self.close()
            raise SideError(f"{ref!r} has no vitcnn/ab/worker.py: it predates `vitcnn ab`, so it cannot be a side")

    def close(self) -> None:
        if self.temp is None:
            return
        subprocess.run(["git", "-C", str(self.repo), "worktree", "remove", "--force", str(self.root)],
                       capture_output=True, text=True)
        shutil.rmtree(self.temp, ignore_errors=True)
        self.temp = None
