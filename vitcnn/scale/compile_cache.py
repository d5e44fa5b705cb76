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

The artifacts hold inductor's generated code, not what it built from it: on a CPU every C++ kernel was compiled
again after a restore (the smoke sweep only 1.32x faster than cold, where a warm inductor directory gave 2.6x). So
the files of inductor's local cache directory travel too (the kernels' sources and their built .so objects, which
inductor finds by the hash of their source, relative to its cache directory): `save` packs the files that no stored
pack holds yet into DIR/<slug>/inductor-<sha256>.tar, and `load` unpacks every pack of the slug before the first
setting, never replacing a file that is already there. Lock and temporary files stay behind.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import warnings
from pathlib import Path

import torch

from vitcnn import fingerprint
from vitcnn.runfile import write_atomic

PREFIX = "vitcnn: compile cache:"
PACK_PREFIX = "inductor-"


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
    return line + "; " + unpack_local_files(directory, local_cache_dir())


def local_cache_dir() -> Path:
    """Inductor's cache directory in this process (TORCHINDUCTOR_CACHE_DIR, or its default under the temp dir)."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    return Path(cache_dir())


def _travels(relative: Path) -> bool:
    """Whether a file of the local cache directory is packed: not a lock, not a file being written."""
    name = relative.name
    return relative.parts[0] != "locks" and not name.endswith((".lock", ".tmp")) and not name.startswith(("tmp", "."))


def _stored_names(directory: Path) -> set[str]:
    names: set[str] = set()
    for pack in sorted(directory.glob(f"{PACK_PREFIX}*.tar")):
        try:
            with tarfile.open(pack) as tar:
                names.update(tar.getnames())
        except (OSError, tarfile.TarError):
            continue  # a damaged pack is skipped when loading too; its files are packed again
    return names


def pack_local_files(directory: Path, local: Path) -> str:
    """Pack the files of `local` that no pack in `directory` holds into one new pack named by its content."""
    if not local.is_dir():
        return f"no local cache directory {local}"
    stored = _stored_names(directory) if directory.is_dir() else set()
    new = sorted(p.relative_to(local) for p in local.rglob("*") if p.is_file() and _travels(p.relative_to(local)))
    new = [rel for rel in new if rel.as_posix() not in stored]
    if not new:
        return f"no new files in {local}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for rel in new:
            data = (local / rel).read_bytes()
            info = tarfile.TarInfo(rel.as_posix())
            info.size, info.mode, info.mtime = len(data), 0o644, 0  # no time or owner: equal files, equal pack
            tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    path = directory / f"{PACK_PREFIX}{hashlib.sha256(data).hexdigest()[:32]}.tar"
    directory.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        write_atomic(path, data)  # content-named: a shard that wrote this name wrote these bytes
    return f"packed {len(new)} files of {local} ({len(data) / 2**20:.1f} MiB) into {path.name}"


def unpack_local_files(directory: Path, local: Path) -> str:
    """Unpack every pack of `directory` into `local`; a file already there is left as it is, a damaged pack or a
    member that would land outside `local` is skipped."""
    packs = sorted(directory.glob(f"{PACK_PREFIX}*.tar")) if directory.is_dir() else []
    if not packs:
        return "no packed local files"
    written, present, skipped = 0, 0, []
    for pack in packs:
        try:
            with tarfile.open(pack) as tar:
                for member in tar.getmembers():
                    rel = Path(member.name)
                    if not member.isfile() or rel.is_absolute() or ".." in rel.parts:
                        continue
                    target = local / rel
                    if target.exists():
                        present += 1
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        write_atomic(target, tar.extractfile(member).read(), replace=False)
                        written += 1
                    except FileExistsError:
                        present += 1  # another process put it there meanwhile
        except (OSError, tarfile.TarError) as exc:
            skipped.append(f"{pack.name} ({type(exc).__name__}: {exc})")
    line = f"unpacked {written} local files from {len(packs)} pack(s) into {local} ({present} already there)"
    return line + (f"; skipped (kept): {', '.join(skipped)}" if skipped else "")


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
    packed = pack_local_files(directory, local_cache_dir())
    if path.exists():
        return f"{PREFIX} {count} artifacts already stored as {path}; {packed}"
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)  # a shard that stored the same name meanwhile stored the same bytes
    return f"{PREFIX} saved {count} artifacts ({len(data) / 2**20:.1f} MiB) to {path}; {packed}"
