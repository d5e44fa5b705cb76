"""The code a session measured with, read when the pytest session starts.

pytest-benchmark reads the commit when it writes the run, at the end of the session: a commit that lands while a
long shard runs makes its run claim code it did not measure with, and shards of one sweep then disagree. So the
plugin records, at the start, the commit, whether the tree was dirty, and a SHA-256 over the files that decide
what is measured and how (the package but what only reads finished runs or drives processes, see NOT_MEASURED;
the benchmarks and conftest.py). Two runs whose digests are equal measured with the same
code, whatever commits they name; `merge` joins such shards and refuses others.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

# Every Python file of the package, the benchmarks and conftest.py counts, except those that only read finished runs
# (gate, report, history, site, tables, the command line) or drive processes (ab and its workers, merge, sweep).
# Listing what does not measure errs on the safe side: a new module counts until someone decides otherwise, so two
# runs can only be called the same code when they are.
MEASURED = ("conftest.py", "benchmarks", "vitcnn")
NOT_MEASURED = ("vitcnn/gate", "vitcnn/report", "vitcnn/history", "vitcnn/site", "vitcnn/ab", "vitcnn/workers",
                "vitcnn/cli", "vitcnn/table.py", "vitcnn/summary.py", "vitcnn/__main__.py",
                "vitcnn/scale/merge.py", "vitcnn/scale/sweep.py")


def measured_files(root: Path) -> list[Path]:
    """The Python files under MEASURED and not under NOT_MEASURED that exist in `root`, in a fixed order."""
    files = []
    for name in MEASURED:
        path = root / name
        if path.is_dir():
            files += [p for p in path.rglob("*.py") if "__pycache__" not in p.parts]
        elif path.is_file():
            files.append(path)
    relative = sorted((p.relative_to(root).as_posix(), p) for p in files)
    return [p for name, p in relative
            if not any(name == skip or name.startswith(skip + "/") for skip in NOT_MEASURED)]


def measured_digest(root: Path) -> str:
    """SHA-256 over each measured file's path (relative to `root`) and content."""
    digest = hashlib.sha256()
    for path in measured_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode() + b"\n")
    return digest.hexdigest()


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def collect(root: Path) -> dict:
    """The run JSON's `vitcnn.code` section: commit and its time (None outside git), dirty (None when unknown),
    the measured files' digest and count."""
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "commit_time": _git(root, "show", "-s", "--format=%cI", "HEAD") if commit else None,
            "dirty": None if status is None else bool(status), "measured_sha256": measured_digest(root),
            "measured_files": len(measured_files(root))}
