"""The code a session measured with, read when the pytest session starts.

pytest-benchmark reads the commit when it writes the run, at the end of the session: a commit that lands while a
long shard runs makes its run claim code it did not measure with, and shards of one sweep then disagree. So the
plugin records, at the start, the commit, whether the tree was dirty, and a SHA-256 over the files that decide
what is measured and how (MEASURED below: the models, the measuring stages, settings and options, the plugin and
the benchmarks; not the gate, report, history or docs). Two runs whose digests are equal measured with the same
code, whatever commits they name; `merge` joins such shards and refuses others.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

MEASURED = ("conftest.py", "benchmarks", "vitcnn/zoo", "vitcnn/measure", "vitcnn/settings.py", "vitcnn/options.py",
            "vitcnn/plugin.py", "vitcnn/fingerprint.py", "vitcnn/cpu_isa.py", "vitcnn/nvml.py",
            "vitcnn/scale/shard.py", "vitcnn/scale/compile_cache.py")


def measured_files(root: Path) -> list[Path]:
    """The Python files under MEASURED that exist in `root`, in a fixed order."""
    files = []
    for name in MEASURED:
        path = root / name
        if path.is_dir():
            files += [p for p in path.rglob("*.py") if "__pycache__" not in p.parts]
        elif path.is_file():
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


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
