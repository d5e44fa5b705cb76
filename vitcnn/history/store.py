"""The history store: every run ever added, kept verbatim in a directory, with an index of what each one is.

Why a directory of run files and not a SQLite file: the stored unit is already a file (a vitcnn run is
pytest-benchmark JSON, and pytest-benchmark's own storage is a directory of them); adding a run adds one file and
rewrites nothing that was stored; a committed history diffs and merges in git like the results it holds; and any
other tool (pytest-benchmark's `compare`, jq) reads it without vitcnn. A history holds tens to a few thousand runs,
which load in seconds, so nothing needs a query engine.

Layout of STORE/:
- `runs/<key>.json`: each run file byte for byte, named by the first 16 hex digits of the SHA-256 of its canonical
  JSON (sorted keys): the same run added twice, even re-indented, is one entry;
- `index.json`: `{"vitcnn_history": 1, "runs": [entry, ...]}`, one entry per run with what it is keyed by (machine
  slug, commit, dirty, commit time, run time, torch, profile) and where it came from.
A store whose index cannot be read, or does not match its files, is refused with the reason and never rewritten;
adding is serialised by a lock file and writes the run before the index, both atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from vitcnn.runfile import Run, RunFileError, order_key, parse_run, write_atomic

FORMAT = 1
INDEX = "index.json"
RUNS = "runs"
LOCK = ".lock"


class StoreError(ValueError):
    """A store that is not a vitcnn history or does not match its index: refused, never rewritten."""


@dataclass(frozen=True)
class Entry:
    """One stored run, as the index records it."""

    key: str
    slug: str
    commit: str | None
    dirty: bool | None
    commit_time: str | None  # ISO 8601, the commit's committer time
    run_time: str | None  # ISO 8601, when pytest-benchmark wrote the run
    torch: str | None
    profile: str | None
    source: str  # the path it was added from

    @property
    def order(self) -> tuple:
        """Commit order first (a backfill measures old commits late), then when it ran; as instants, whatever the
        committer's UTC offset."""
        return (order_key(self.commit_time or self.run_time), order_key(self.run_time))


@dataclass(frozen=True)
class Added:
    """What `add` did with one file: "added", "present" (already stored: nothing written) or "refused"."""

    source: str
    outcome: str
    key: str | None = None
    reason: str | None = None


def content_key(data: dict) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()[:16]


def entry_of(run: Run, key: str, source: str) -> Entry:
    code = run.code  # read at session start where the run recorded it (Run.code)
    return Entry(key=key, slug=run.slug, commit=code.get("commit"), dirty=code.get("dirty"),
                 commit_time=code.get("commit_time"), run_time=run.raw.get("datetime"),
                 torch=run.fingerprint.get("torch"), profile=run.profile, source=source)


def run_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The files named, and every *.json under a directory named (pytest-benchmark's `.benchmarks/` storage is a
    tree of them: MACHINE-ID/NNNN_COMMIT_DATE.json)."""
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.json") if p.is_file())
        else:
            yield path


class HistoryStore:
    """A history directory; opening an existing one checks it, `create=True` makes an empty one."""

    def __init__(self, root: str | Path, create: bool = False) -> None:
        self.root = Path(root)
        index = self.root / INDEX
        if not index.exists():
            if not create:
                raise StoreError(f"{self.root}: no history here ({INDEX} missing); `vitcnn history add` makes one")
            if self.root.exists() and any(self.root.iterdir()):
                raise StoreError(f"{self.root}: exists, is not empty and has no {INDEX}: not a history store, "
                                 f"refusing to write into it")
            (self.root / RUNS).mkdir(parents=True, exist_ok=True)
            write_atomic(index, {"vitcnn_history": FORMAT, "runs": []}, replace=False)
        self.entries = self._read_index()

    def _read_index(self) -> list[Entry]:
        path = self.root / INDEX
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"{path}: unreadable index ({exc}); the store is refused and left as it is") from None
        if not isinstance(data, dict) or data.get("vitcnn_history") != FORMAT or not isinstance(data.get("runs"),
                                                                                              list):
            raise StoreError(f"{path}: not a vitcnn history index of format {FORMAT}; refused and left as it is")
        try:
            entries = [Entry(**item) for item in data["runs"]]
        except TypeError as exc:
            raise StoreError(f"{path}: malformed entry ({exc}); refused and left as it is") from None
        missing = [e.key for e in entries if not (self.root / RUNS / f"{e.key}.json").is_file()]
        if missing:
            raise StoreError(f"{path}: indexes runs whose files are missing ({', '.join(missing[:5])}); refused and "
                             f"left as it is")
        return entries

    def keys(self) -> set[str]:
        return {e.key for e in self.entries}

    def path_of(self, entry: Entry) -> Path:
        return self.root / RUNS / f"{entry.key}.json"

    def load(self, entry: Entry) -> Run:
        """The stored run; a file whose content no longer has its key is a StoreError (edited or damaged)."""
        path = self.path_of(entry)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"{path}: stored run unreadable ({exc}); the store is damaged") from None
        if content_key(data) != entry.key:
            raise StoreError(f"{path}: content does not match its key {entry.key}: edited or damaged")
        return parse_run(data, str(path))

    def runs(self) -> Iterator[tuple[Entry, Run]]:
        """Every stored run, oldest commit first."""
        for entry in sorted(self.entries, key=lambda e: e.order):
            yield entry, self.load(entry)

    def add(self, paths: Iterable[str | Path]) -> list[Added]:
        """Add run files (and directories of them); a file that is not a vitcnn run is refused with the reason and
        the others are still added."""
        outcomes = []
        with self._locked():
            self.entries = self._read_index()  # another process may have added since we opened
            for path in run_files(paths):
                outcomes.append(self._add_one(path))
        return outcomes

    def _add_one(self, path: Path) -> Added:
        try:
            raw = path.read_bytes()
            data = json.loads(raw)
            run = parse_run(data, str(path))
        except (OSError, json.JSONDecodeError, RunFileError) as exc:
            return Added(str(path), "refused", reason=str(exc) if isinstance(exc, RunFileError) else
                         f"{path}: {getattr(exc, 'strerror', None) or exc}")
        key = content_key(data)
        if key in self.keys():
            return Added(str(path), "present", key)
        target = self.root / RUNS / f"{key}.json"
        if not target.exists():  # it can, unindexed, after an add that was killed between the two writes
            write_atomic(target, raw, replace=False)
        self.entries.append(entry_of(run, key, str(path)))
        write_atomic(self.root / INDEX, {"vitcnn_history": FORMAT, "runs": [asdict(e) for e in self.entries]})
        return Added(str(path), "added", key)

    @contextlib.contextmanager
    def _locked(self):
        with open(self.root / LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
