"""Start warm: carry torch.compile's artifacts from one run (or shard, or runner) to the next.

Inductor already caches compiled graphs on the local disk, but a fresh CI runner, a new Slurm node or a clean
container starts with an empty cache and recompiles every setting. `torch.compiler.save_cache_artifacts()`
serialises what this process compiled or loaded from the cache (inductor FX graphs, AOTAutograd entries, autotuning
results); `load_cache_artifacts()` writes them back into the local caches before anything compiles, where inductor
finds them by its own keys. This module only moves those bytes: what counts as the same graph is inductor's
decision (its keys cover the graph, the torch version and the device), so vitcnn never adds or removes entries.
Settings whose trace-time context inductor does not key on (an explicit SDPA backend) must be kept apart by the
measuring code (their own cache key, or caching off); whatever inductor stores for them travels unchanged.

Layout: DIR/<fingerprint slug>/<sha256 of the content>.bin. The slug (device, CPU or GPU model, driver, CUDA, torch,
...) keeps artifacts of another machine or torch version out of the way. Each run adds a file named by its content
and never replaces or deletes one, so shards that save into one shared DIR at the same time lose nothing, and a
rerun that compiled nothing new writes nothing new. Loading reads every file of the slug (later files win for the
same key; the contents are equal by construction). Delete DIR/<slug> to start over.

With a torch that lacks these functions (before 2.7), a warning says so and the run is cold.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch

from vitcnn import fingerprint
from vitcnn.runfile import write_atomic

PREFIX = "vitcnn: compile cache:"


class CompileCacheWarning(UserWarning):
    """The compile cache cannot be used; the run goes on cold."""


def supported() -> bool:
    """Whether this torch can save and load compile artifacts."""
    compiler = getattr(torch, "compiler", None)
    return hasattr(compiler, "save_cache_artifacts") and hasattr(compiler, "load_cache_artifacts")


def slug_dir(root: Path | str, device: torch.device | str) -> Path:
    """Where the artifacts of this machine and software live under `root`."""
    return Path(root) / fingerprint.slug(fingerprint.collect(device))


def _unsupported() -> str:
    message = (f"{PREFIX} torch {torch.__version__} has no torch.compiler.save_cache_artifacts/"
               f"load_cache_artifacts; this run compiles cold and saves nothing")
    warnings.warn(message, CompileCacheWarning, stacklevel=2)
    return message


def load(root: Path | str, device: torch.device | str) -> str:
    """Load every stored artifact file of this fingerprint into the local compile caches; a line saying what was
    loaded. A file that cannot be read or decoded is skipped and kept (nothing stored is ever deleted)."""
    if not supported():
        return _unsupported()
    directory = slug_dir(root, device)
    files = sorted(directory.glob("*.bin")) if directory.is_dir() else []
    if not files:
        return f"{PREFIX} nothing stored in {directory} yet (cold start)"
    artifacts, skipped = 0, []
    for path in files:
        try:
            info = torch.compiler.load_cache_artifacts(path.read_bytes())
        except Exception as exc:  # a damaged file must not stop the sweep; it only runs colder
            skipped.append(f"{path.name} ({type(exc).__name__}: {exc})")
            continue
        if info is None:
            skipped.append(f"{path.name} (not readable by torch {torch.__version__})")
            continue
        artifacts += sum(len(keys) for keys in info.artifacts.values())
    line = f"{PREFIX} loaded {artifacts} artifacts from {len(files) - len(skipped)} file(s) in {directory}"
    if skipped:
        line += f"; skipped (kept): {', '.join(skipped)}"
    return line


def save(root: Path | str, device: torch.device | str) -> str:
    """Store what this process compiled or loaded as one new content-named file; a line saying what happened."""
    if not supported():
        return _unsupported()
    saved = torch.compiler.save_cache_artifacts()
    if saved is None:
        return f"{PREFIX} nothing was compiled, nothing saved"
    data, info = saved
    count = sum(len(keys) for keys in info.artifacts.values())
    directory = slug_dir(root, device)
    path = directory / f"{hashlib.sha256(data).hexdigest()[:32]}.bin"
    if path.exists():
        return f"{PREFIX} {count} artifacts already stored as {path}"
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)  # a shard that stored the same name meanwhile stored the same bytes
    return f"{PREFIX} saved {count} artifacts ({len(data) / 2**20:.1f} MiB) to {path}"
