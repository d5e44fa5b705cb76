"""Read a vitcnn run: the pytest-benchmark JSON that `pytest benchmarks --benchmark-only --benchmark-json F` writes.

vitcnn adds to pytest-benchmark's JSON (docs/reference/run-json.md):
- `machine_info["vitcnn_fingerprint"]` and `machine_info["vitcnn_slug"]`: what machine/software the run belongs to;
- per benchmark `extra_info`: the setting, status "ok" and the measured numbers (FLOPs, memory, MFU, ...);
- per benchmark `stats["data"]`: the raw per-call seconds;
- top level `vitcnn = {"schema": 1, "profile": ..., "selection": ..., "settings": [...]}`: the profile, the
  selection in words (the profile and the axis options or -k that narrowed it), and every setting of the session
  with its status ("ok", "oom", "error", "skipped") and reason, including those that produced no timing.
- in a baseline, `vitcnn["median_history"]`: each setting's medians over the saved runs (see baseline.py).
This module writes the `vitcnn` section (status_entry, vitcnn_section: the plugin and `vitcnn ab` both use them) and
reads a file back into a `Run` of `Result` records (vitcnn/result.py: the one shape of a setting's outcome). The
plugin builds one Run at session end and hands it to the terminal table, the gate, the baseline store and the
report; files read later become the same records.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from vitcnn import cpu_isa
from vitcnn.fingerprint import records_cpu_isa, slug
from vitcnn.result import STATUSES, Result
from vitcnn.settings import Setting

SCHEMA = 1


class RunFileError(ValueError):
    """A file that is not a readable vitcnn run."""


def status_entry(setting: Setting, status: str, reason: str | None) -> dict:
    """One setting's entry in the run JSON's vitcnn.settings list (every setting, timed or not)."""
    return {"setting": setting.as_dict(), "id": setting.id, "status": status, "reason": reason}


def vitcnn_section(profile: str, entries: list[dict], shard_record: dict | None = None,
                   selection: str | None = None, code: dict | None = None) -> dict:
    """The run JSON's top-level `vitcnn` section (parse_run reads it)."""
    section = {"schema": SCHEMA, "profile": profile, "selection": selection or profile, "settings": entries}
    if code is not None:
        section["code"] = code
    if shard_record is not None:
        section["shard"] = shard_record
    return section


def order_key(timestamp: str | None) -> datetime:
    """An ISO 8601 time as an instant, for ordering: commits carry their committer's UTC offset, so the strings do
    not sort by time; a time without an offset is taken as UTC, and a missing one sorts first."""
    if not timestamp:
        return datetime.min.replace(tzinfo=timezone.utc)
    when = datetime.fromisoformat(timestamp)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@dataclass
class Run:
    """A whole run: fingerprint, profile and one Result per setting id."""

    path: str
    fingerprint: dict
    slug: str  # recomputed from the fingerprint, never trusted from the file
    profile: str | None
    results: dict[str, Result]
    raw: dict
    median_history: dict[str, list[float]] = field(default_factory=dict)  # baselines only; see baseline.py

    @property
    def device_label(self) -> str:
        return device_label(self.fingerprint, self.machine_cpu)

    @property
    def machine_cpu(self) -> dict | None:
        """pytest-benchmark's record of the CPU (py-cpuinfo: vendor, family, model, flags), when it wrote one."""
        cpu = self.raw.get("machine_info", {}).get("cpu")
        return cpu if isinstance(cpu, dict) else None

    @property
    def code(self) -> dict:
        """What the run measured with: commit, commit time, dirty, measured-files digest (code_identity.py) as the
        plugin read them at session start; for older files pytest-benchmark's commit_info, read at session end."""
        recorded = self.raw.get("vitcnn", {}).get("code")
        if isinstance(recorded, dict) and recorded.get("commit"):
            return recorded
        info = self.raw.get("commit_info") or {}
        return {"commit": info.get("id"), "commit_time": info.get("time"), "dirty": info.get("dirty"),
                **({"measured_sha256": recorded.get("measured_sha256")} if isinstance(recorded, dict) else {})}

    @property
    def selection(self) -> str | None:
        """The profile and what narrowed it (axis options, -k), as the plugin recorded it; older files: the
        profile's name."""
        return self.raw.get("vitcnn", {}).get("selection") or self.profile


def cpu_features(fp: dict, machine_cpu: dict | None = None) -> tuple[list[str] | None, str]:
    """The CPU's kernel features and where they come from: the fingerprint ("vitcnn"), or for a fingerprint of
    the first format pytest-benchmark's py-cpuinfo record beside it ("py-cpuinfo"); (None, "") when neither."""
    if records_cpu_isa(fp):
        return fp.get("cpu_features"), "vitcnn"
    if machine_cpu and machine_cpu.get("flags"):
        return cpu_isa.from_pytest_benchmark(machine_cpu)["cpu_features"], "py-cpuinfo"
    return None, ""


def device_label(fp: dict, machine_cpu: dict | None = None) -> str:
    """Human name of the measuring machine; CPU runs say so, so nobody mistakes them for GPU numbers, and say their
    kernel tier (with AMX or not), because one model string covers both."""
    if fp.get("device") == "cuda" or fp.get("gpu_name"):
        mig = fp.get("gpu_mig")
        return str(fp.get("gpu_name") or "unknown GPU") + (f" ({mig})" if mig and mig not in ("on", "off") else "")
    cores = fp.get("cpu_count")
    tier = cpu_isa.tier_label(cpu_features(fp, machine_cpu)[0])
    return (f"CPU measurement: {fp.get('cpu_model', 'unknown CPU')}{f', {cores} cores' if cores else ''}"
            f"{f', {tier}' if tier else ''}")


def parse_run(data: dict, path: str = "<memory>") -> Run:
    """Build a Run from the decoded JSON; raises RunFileError when it is not a vitcnn run."""
    if not isinstance(data, dict) or "benchmarks" not in data or "machine_info" not in data:
        raise RunFileError(f"{path}: not a pytest-benchmark JSON file (no 'benchmarks'/'machine_info')")
    vitcnn = data.get("vitcnn")
    if not isinstance(vitcnn, dict) or vitcnn.get("schema") != SCHEMA:
        raise RunFileError(f"{path}: no vitcnn section of schema {SCHEMA}; was it written by the vitcnn plugin?")
    machine = data["machine_info"]
    fingerprint = machine.get("vitcnn_fingerprint")
    if not isinstance(fingerprint, dict):
        raise RunFileError(f"{path}: machine_info has no vitcnn_fingerprint")
    results: dict[str, Result] = {}
    try:
        for entry in vitcnn.get("settings", []):
            setting = Setting.from_dict(entry["setting"])
            if entry["status"] not in STATUSES:
                raise RunFileError(f"{path}: setting {setting.id} has unknown status {entry['status']!r}")
            results[setting.id] = Result(setting, entry["status"], entry.get("reason"))
        for bench in data["benchmarks"]:
            extra = bench.get("extra_info", {})
            if "setting" not in extra:
                continue  # a benchmark that is not a vitcnn setting
            setting = Setting.from_dict(extra["setting"])
            stats = dict(bench.get("stats", {}))
            samples = [float(s) for s in stats.pop("data", [])]
            result = results.setdefault(setting.id, Result(setting, extra.get("status", "ok")))
            result.samples, result.info, result.stats = samples, extra, stats
    except (KeyError, TypeError) as exc:
        raise RunFileError(f"{path}: malformed vitcnn entry ({exc!r})") from exc
    return Run(path, fingerprint, slug(fingerprint), vitcnn.get("profile"), results, data, _history(vitcnn, path))


def _history(vitcnn: dict, path: str) -> dict[str, list[float]]:
    history = vitcnn.get("median_history", {})
    try:
        return {str(sid): [float(m) for m in medians] for sid, medians in history.items()}
    except (AttributeError, TypeError, ValueError) as exc:
        raise RunFileError(f"{path}: malformed median_history ({exc!r})") from exc


def load_run(path: str | Path) -> Run:
    """Read and parse a run file; any problem is a RunFileError naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise RunFileError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunFileError(f"{path}: not valid JSON ({exc})") from exc
    return parse_run(data, str(path))


def write_output(path: Path | str, data: str | dict) -> None:
    """An output a user named (--json, --markdown, ...): text, or a dict as JSON written atomically; missing parent
    directories are created, as pytest-benchmark does for --benchmark-json."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, dict):
        write_atomic(path, data)
    else:
        path.write_text(data)


def write_atomic(path: Path | str, data: dict | bytes, replace: bool = True) -> None:
    """Write `data` (bytes, or a dict as indented JSON) to a temp file next to `path`, fsync it, then put it in place:
    readers see the old file or the new one, never half of one, and a failure leaves `path` as it was and no temp
    file behind. With `replace` the temp file is renamed over `path`; without, it is hard-linked to `path`, which
    fails with FileExistsError when `path` exists, even if someone created it a moment ago: nothing is overwritten.

    Runs, baselines, merged shards and compile-cache artifacts are all written here."""
    path = Path(path)
    if isinstance(data, dict):
        data = (json.dumps(data, indent=2) + "\n").encode()
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)  # the .tmp suffix keeps it out of globs such as the compile cache's *.bin
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; stored files are shared like any file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if not replace:
        with contextlib.suppress(OSError):
            tmp.unlink()  # `path` is the file now; the temp name was only a second link to it
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename or link itself durable (best effort: not every platform can open a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
