"""`python -m vitcnn merge -o OUT.json SHARD.json...`: the runs of one sharded sweep as one run.

The merged file is an ordinary vitcnn run (pytest-benchmark JSON with raw samples and every setting's status), so
`compare`, `baseline save`, the gate and `report` read it like any other. Merging refuses, listing what differs:
- shards of different machines or software (fingerprint identity fields: GPU and its board, MIG slice, ECC,
  clocks; CPU features and thread count; driver, CUDA, torch, timm, ...; host names are not identity) or that
  measured different code (vitcnn.code digests, read at session start; shards without them: different commits);
  shards that mix an older fingerprint with a complete one;
- shards of different selections (profile, shard count, selection digest), a shard given twice, a missing shard
  (unless partial), shards whose settings do not add up to the selection;
- a setting present in two shards, or in a shard it does not belong to.
The output is written atomically and never replaces an existing file unless forced.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from pathlib import Path

from vitcnn import fingerprint
from vitcnn.runfile import Run, load_run, parse_run, write_atomic
from vitcnn.scale.shard import selection_digest
from vitcnn.settings import Setting


class MergeError(ValueError):
    """Runs that cannot be merged into one; `problems` lists every reason."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("refusing to merge:\n" + "\n".join(f"  - {p}" for p in self.problems))


def _shard(run: Run) -> dict:
    return run.raw["vitcnn"]["shard"]


def _check_sections(runs: list[Run]) -> list[str]:
    return [f"{run.path}: not a shard run (no vitcnn.shard section); run each part with --vitcnn-shard=K/N"
            for run in runs if not isinstance(run.raw["vitcnn"].get("shard"), dict)]


def _check_fingerprints(runs: list[Run]) -> list[str]:
    """Identity fields that differ from the first shard (whose numbers would not be comparable)."""
    first = runs[0]
    problems = []
    for run in runs[1:]:
        if fingerprint.is_complete(first.fingerprint) != fingerprint.is_complete(run.fingerprint):
            old = run if fingerprint.is_complete(first.fingerprint) else first
            problems.append(f"{old.path}: fingerprint of an older vitcnn (identity incomplete), the other shards' "
                            f"complete: they may come from different kinds of machine; rerun that shard")
        for key, (a, b) in fingerprint.differences(first.fingerprint, run.fingerprint).items():
            problems.append(f"fingerprint field {key!r} differs: {first.path}={a!r} {run.path}={b!r}")
        problems += _code_differs(first, run)
    return problems


def _code_differs(first: Run, run: Run) -> list[str]:
    """Shards must have measured with the same code: equal digests of the measured files (vitcnn.code, read at
    session start) whatever commit each names; shards without that record fall back to pytest-benchmark's commit,
    read at session end."""
    code_a, code_b = (r.raw["vitcnn"].get("code") for r in (first, run))
    if code_a and code_b:
        if code_a.get("measured_sha256") != code_b.get("measured_sha256"):
            return [f"measured code differs: {first.path} (commit {code_a.get('commit')}, dirty "
                    f"{code_a.get('dirty')}) and {run.path} (commit {code_b.get('commit')}, dirty "
                    f"{code_b.get('dirty')}) have different digests of the measured files"]
        return []
    commit_a, commit_b = (r.raw.get("commit_info", {}).get("id") for r in (first, run))
    if commit_a and commit_b and commit_a != commit_b:
        return [f"commit differs: {first.path}={commit_a!r} {run.path}={commit_b!r} (and no record of the measured "
                f"code to show it is the same)"]
    return []


def _check_selection(runs: list[Run], partial: bool) -> tuple[list[str], list[int]]:
    """Problems with how the shards fit together, and the missing shard indices."""
    problems = []
    first = runs[0]
    for key in ("count", "selection_size", "selection_sha256"):
        values = {_shard(run)[key] for run in runs}
        if len(values) > 1:
            detail = ", ".join(f"{run.path}={_shard(run)[key]!r}" for run in runs)
            problems.append(f"shards of different selections: {key} differs ({detail})")
    profiles = {run.profile for run in runs}
    if len(profiles) > 1:
        problems.append(f"shards of different profiles: {', '.join(f'{r.path}={r.profile!r}' for r in runs)}")
    if problems:
        return problems, []
    by_index: dict[int, list[str]] = defaultdict(list)
    for run in runs:
        by_index[_shard(run)["index"]].append(run.path)
    count = _shard(first)["count"]
    problems += [f"shard {i}/{count} given more than once: {', '.join(paths)}"
                 for i, paths in sorted(by_index.items()) if len(paths) > 1]
    missing = [i for i in range(1, count + 1) if i not in by_index]
    if missing and not partial:
        problems.append(f"missing shard(s) {', '.join(map(str, missing))} of {count} "
                        f"(merge them all, or pass --partial to merge what exists)")
    if not missing and not problems:
        assigned = [i for run in runs for i in _shard(run)["ids"]]
        if len(assigned) != len(set(assigned)) or selection_digest(assigned) != _shard(first)["selection_sha256"]:
            problems.append("the shards' settings do not add up to their selection "
                            "(shards made by different vitcnn versions or options?)")
    return problems, missing


def _check_results(runs: list[Run]) -> list[str]:
    """Every setting in exactly one shard, and in the shard it was assigned to."""
    problems = []
    owner: dict[str, str] = {}
    for run in runs:
        assigned = set(_shard(run)["ids"])
        for setting_id in run.results:
            if setting_id in owner:
                problems.append(f"duplicate setting {setting_id}: in {owner[setting_id]} and {run.path}")
            else:
                owner[setting_id] = run.path
            if setting_id not in assigned:
                problems.append(f"{run.path}: setting {setting_id} is not part of shard {_shard(run)['index']}")
    return problems


def _setting_key(setting: dict) -> tuple:
    s = Setting.from_dict(setting)
    return (0, s.model, s.resolution, s.batch, s.precision, s.sdpa, s.compile_mode, s.layout)


def _bench_key(bench: dict) -> tuple:
    setting = (bench.get("extra_info") or {}).get("setting")
    return _setting_key(setting) if isinstance(setting, dict) else (1, str(bench.get("fullname")))


def merge(runs: list[Run], partial: bool = False) -> dict:
    """The JSON of one run made of `runs` (shards of one sweep); raises MergeError listing every problem.

    With `partial`, missing shards are allowed and named in `vitcnn.shards.missing`; the gate then sees their
    settings as missing.
    """
    if not runs:
        raise MergeError(["no runs given"])
    problems = _check_sections(runs)
    if problems:
        raise MergeError(problems)
    runs = sorted(runs, key=lambda run: _shard(run)["index"])
    selection_problems, missing = _check_selection(runs, partial)
    problems = _check_fingerprints(runs) + selection_problems + _check_results(runs)
    if problems:
        raise MergeError(problems)
    merged = copy.deepcopy(runs[0].raw)
    merged["benchmarks"] = sorted((b for run in runs for b in run.raw["benchmarks"]), key=_bench_key)
    vitcnn = merged["vitcnn"]
    vitcnn["settings"] = sorted((e for run in runs for e in run.raw["vitcnn"]["settings"]),
                                key=lambda entry: _setting_key(entry["setting"]))
    first = _shard(runs[0])
    del vitcnn["shard"]
    vitcnn["shards"] = {
        "count": first["count"], "selection_size": first["selection_size"],
        "selection_sha256": first["selection_sha256"], "missing": missing,
        "merged": [{"index": _shard(run)["index"], "source": _shard(run)["source"], "file": run.path,
                    "commit": run.code.get("commit"),
                    "node": run.raw["machine_info"].get("node"), "datetime": run.raw.get("datetime"),
                    "settings": len(run.results)} for run in runs],
    }
    parse_run(merged, "merged run")  # never write what the gate could not read back
    return merged


def merge_files(inputs: list[Path | str], output: Path | str, force: bool = False, partial: bool = False) -> dict:
    """Read, merge and write; returns the merged JSON. Raises RunFileError, MergeError, FileExistsError."""
    output = Path(output)
    if output.exists() and not force:
        raise FileExistsError(f"{output} exists; pass --force to replace it")
    resolved = {Path(p).resolve() for p in inputs}
    if output.resolve() in resolved:
        raise MergeError([f"{output} is also an input; write the merged run to a new file"])
    merged = merge([load_run(p) for p in inputs], partial=partial)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, merged, replace=force)  # without force, a file that appeared meanwhile is kept
    return merged
