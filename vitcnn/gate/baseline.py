"""Baseline files: one baseline per fingerprint, at `baselines/<slug>.json`.

A baseline is a full vitcnn run file (pytest-benchmark JSON with raw samples and the `vitcnn.settings` statuses).
Writing one is explicit and atomic; an existing baseline is merged, not replaced, so a run that covered only some
settings never erases the others, and a corrupt file is never overwritten. Each save appends the run to
`vitcnn.saved_runs` (each setting's median with its interval and whether it was contended: the unit the gate judges
speed by, vitcnn/gate/stored.py) and each setting's median to `vitcnn.median_history` (what older vitcnn read). This
module only reads and writes files.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

from vitcnn import fingerprint
from vitcnn.gate import stored
from vitcnn.runfile import Run, RunFileError, load_run, parse_run, write_atomic
from vitcnn.settings import Setting

DEFAULT_DIR = "baselines"
HISTORY_LENGTH = 10  # medians of the last saved runs kept per setting


class BaselineError(ValueError):
    """A baseline that cannot be read, written or compared as asked."""


class NoBaselineError(BaselineError):
    """No baseline exists yet for this run's fingerprint."""


class CorruptBaselineError(BaselineError, RunFileError):
    """An existing baseline file that is not a readable vitcnn run; it is never overwritten."""


class FingerprintMismatch(BaselineError):
    """Two runs from different machines/software: their numbers are not comparable."""

    def __init__(self, differences: dict[str, tuple], base_name: str = "base", new_name: str = "new"):
        self.differences = dict(differences)
        lines = [f"  {key}: {base_name}={a!r} {new_name}={b!r}" for key, (a, b) in self.differences.items()]
        super().__init__(
            "refusing to compare runs with different fingerprints (timings are not comparable):\n"
            + "\n".join(lines)
            + "\nrecord a baseline on this machine, or allow a cross-machine comparison explicitly"
        )


def baseline_path(slug: str, directory: Path | str = DEFAULT_DIR) -> Path:
    """Where the baseline of fingerprint `slug` lives."""
    if not slug or "/" in slug or slug.startswith("."):
        raise BaselineError(f"invalid baseline slug {slug!r}")
    return Path(directory) / f"{slug}.json"


def load_baseline(path: Path | str) -> Run:
    """Read an existing baseline; any problem is a CorruptBaselineError that says nothing was changed."""
    try:
        return load_run(path)
    except RunFileError as exc:
        raise CorruptBaselineError(
            f"baseline {path} is unusable: {exc}\nit was left untouched; fix or delete it, then save again"
        ) from exc


def _setting_id(setting: dict) -> str:
    """Setting id of a raw `setting` dict (the id runfile keys results by)."""
    return Setting.from_dict(setting).id


def _bench_key(bench: dict) -> str:
    """Identity of a benchmark entry for merging: its setting id, or its full test name if it is not vitcnn's."""
    extra = bench.get("extra_info") or {}
    if isinstance(extra.get("setting"), dict):
        return _setting_id(extra["setting"])
    return f"test:{bench.get('fullname') or bench.get('name')}"


def _merge_lists(old: list[dict], new: list[dict], key, covered: set[str]) -> list[dict]:
    """`old` with entries of covered keys replaced in place by `new` ones (or dropped when `new` has none for
    that key), then the remaining `new` entries appended: the file stays diff-friendly."""
    new_by_key = {key(item): item for item in new}
    merged = []
    for item in old:
        k = key(item)
        if k in new_by_key:
            merged.append(new_by_key.pop(k))
        elif k not in covered:
            merged.append(item)
    return merged + list(new_by_key.values())


def _with_history(data: dict, old: Run | None, run: Run) -> dict:
    """`data` plus `run` as one more saved run (stored.record: each setting's median, its interval, its host
    state), the last HISTORY_LENGTH kept: saving the same code several times records how far a median moves from
    run to run on this machine, which the gate reads (vitcnn/gate/stored.py). `median_history`, each setting's
    medians alone, is kept for older readers; a setting that did not run ok this time starts it again."""
    old_history = old.median_history if old else {}
    data["vitcnn"]["saved_runs"] = ([*old.raw["vitcnn"].get("saved_runs", []), stored.record(run)] if old else
                                    [stored.record(run)])[-HISTORY_LENGTH:]
    history = {k: list(v) for k, v in old_history.items()}
    for setting_id, result in run.results.items():
        median = result.median_s if result.status == "ok" else None
        if median is None:
            history.pop(setting_id, None)
        else:
            history[setting_id] = (history.get(setting_id, []) + [median])[-HISTORY_LENGTH:]
    data["vitcnn"]["median_history"] = history
    return data


def merge_runs(old: Run, new: Run) -> dict:
    """JSON of `old` updated with `new`: every setting `new` covers (whatever its status) replaces the same id in
    `old`, both its benchmark and its status entry, so no stale samples survive next to a new "oom"; settings
    `new` did not cover are kept. machine_info, commit_info and the other top-level fields come from `new`."""
    merged = copy.deepcopy(new.raw)
    covered = set(new.results)
    merged["benchmarks"] = _merge_lists(
        old.raw.get("benchmarks", []), new.raw.get("benchmarks", []), _bench_key, covered
    )
    merged["vitcnn"]["settings"] = _merge_lists(
        old.raw["vitcnn"].get("settings", []), new.raw["vitcnn"].get("settings", []),
        lambda entry: _setting_id(entry["setting"]), covered,
    )
    return merged


def save_baseline(run: Run, directory: Path | str = DEFAULT_DIR, allow_cross_machine: bool = False) -> Path:
    """Save `run` as the baseline of its fingerprint, merged into the existing one if any; returns the path.

    Raises CorruptBaselineError (existing file unreadable; it is not touched) or FingerprintMismatch (existing
    baseline of another identity, unless `allow_cross_machine`)."""
    path = baseline_path(run.slug, directory)
    data, old = copy.deepcopy(run.raw), None
    if path.exists():
        old = load_baseline(path)
        diff = fingerprint.differences(old.fingerprint, run.fingerprint)
        if diff and not allow_cross_machine:
            raise FingerprintMismatch(diff, "baseline", "run")
        data = merge_runs(old, run)
    data = _with_history(data, old, run)
    parse_run(data, str(path))  # never write a file the gate could not read back
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    return path


def resave_reason(run: Run) -> str | None:
    """Why a stored baseline should be saved again on its machine (None when it need not): a fingerprint of the
    first format cannot tell machines of one model string apart (AMX or not, another power limit, a MIG slice)."""
    missing = fingerprint.missing_identity(run.fingerprint)
    if not missing:
        return None
    return (f"identity incomplete (recorded before vitcnn read {', '.join(missing)}): re-save it on its machine; "
            f"speed is not gated against it")


def require_baseline(slug: str, directory: Path | str = DEFAULT_DIR,
                     older_slugs: str | Sequence[str] | None = None) -> Run:
    """The stored baseline of fingerprint `slug`; NoBaselineError (with how to make one) when there is none.

    With `older_slugs` (fingerprint.older_slugs of the run), a baseline saved by an older vitcnn for what may be
    this machine is used when none exists under `slug`; its identity is incomplete, which the gate says."""
    path = baseline_path(slug, directory)
    older = [older_slugs] if isinstance(older_slugs, str) else list(older_slugs or [])
    for legacy_slug in ([] if path.exists() else [s for s in older if s != slug]):
        legacy = baseline_path(legacy_slug, directory)
        if legacy.exists():
            return load_baseline(legacy)
    if not path.exists():
        raise NoBaselineError(
            f"no baseline for this machine ({path} does not exist); create one with "
            f"`pytest benchmarks --benchmark-only --vitcnn-save-baseline` or `python -m vitcnn baseline save RUN.json`"
        )
    return load_baseline(path)
