"""Baselines and the regression gate: store one baseline run per fingerprint, compare a new run against it.

A baseline is a full vitcnn run file (pytest-benchmark JSON with raw samples and the `vitcnn.settings` statuses)
at `baselines/<slug>.json`. Writing one is explicit and atomic; an existing baseline is merged, not replaced, so a
run that covered only some settings never erases the others. Comparing runs of different fingerprints is refused
(timings from another GPU, driver or library version say nothing about a regression) unless explicitly allowed.

Verdicts per setting:
- speed: `slower` / `faster` only when the median moved by more than the tolerance AND a one-sided Mann–Whitney U
  test on the raw samples is significant; a big move without significance is `inconclusive`, a small one `same`;
- memory: `memory-up` / `memory-down` when the activation peak moved by more than max(relative, absolute) tolerance;
- status: `now-oom` / `now-error` (it used to run, or failed differently), `fixed`, `missing`, `new`.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from vitcnn import fingerprint
from vitcnn.runfile import Result, Run, RunFileError, load_run, parse_run
from vitcnn.settings import Setting

DEFAULT_DIR = "baselines"
MIB = 1024 * 1024
MIN_SAMPLES = 3  # fewer raw samples on a side and no significance test is attempted
FAILED = ("oom", "error")

LABELS = ("slower", "faster", "inconclusive", "same", "memory-up", "memory-down", "now-oom", "now-error", "fixed",
          "missing", "new")
ALWAYS_REGRESSIONS = frozenset({"slower", "memory-up", "now-oom", "now-error"})
REGRESSIONS = ALWAYS_REGRESSIONS | {"missing"}


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


# --------------------------------------------------------------------------------------------------- baseline store


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


HISTORY_LENGTH = 10  # medians of the last saved runs kept per setting


def _history(data: dict) -> dict[str, list[float]]:
    return data.get("vitcnn", {}).get("median_history", {})


def _with_history(data: dict, old_history: dict[str, list[float]], run: Run) -> dict:
    """`data` plus each setting's medians over the saved runs: saving the same code twice or more records how
    much a median moves from run to run on this machine, which the gate then allows (see run_to_run_spread).
    A setting that did not run ok this time starts its history again."""
    history = {k: list(v) for k, v in old_history.items()}
    for setting_id, result in run.results.items():
        median = _median(result) if result.status == "ok" else None
        if median is None:
            history.pop(setting_id, None)
        else:
            history[setting_id] = (history.get(setting_id, []) + [median])[-HISTORY_LENGTH:]
    data["vitcnn"]["median_history"] = history
    return data


def run_to_run_spread(medians: list[float]) -> float:
    """max/min - 1 over a setting's saved-run medians (0 with fewer than two): the noise one run cannot show."""
    if len(medians) < 2 or min(medians) <= 0:
        return 0.0
    return max(medians) / min(medians) - 1


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


def _write_atomic(path: Path, data: dict) -> None:
    """Write JSON to a temp file next to `path`, fsync it, then rename over `path`: readers see old or new, never
    half a file, and a failure anywhere leaves the old file and no temp file behind."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a baseline is shared like any file
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every platform can open a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_baseline(run: Run, directory: Path | str = DEFAULT_DIR, allow_cross_machine: bool = False) -> Path:
    """Save `run` as the baseline of its fingerprint, merged into the existing one if any; returns the path.

    Raises CorruptBaselineError (existing file unreadable; it is not touched) or FingerprintMismatch (existing
    baseline of another identity, unless `allow_cross_machine`)."""
    path = baseline_path(run.slug, directory)
    data, old_history = copy.deepcopy(run.raw), {}
    if path.exists():
        old = load_baseline(path)
        diff = fingerprint.differences(old.fingerprint, run.fingerprint)
        if diff and not allow_cross_machine:
            raise FingerprintMismatch(diff, "baseline", "run")
        data, old_history = merge_runs(old, run), _history(old.raw)
    data = _with_history(data, old_history, run)
    parse_run(data, str(path))  # never write a file the gate could not read back
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, data)
    return path


# ------------------------------------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class GateOptions:
    """Thresholds of the gate. Speed: median ratio beyond 1+tolerance and Mann–Whitney p < alpha. Memory: growth
    beyond max(memory_rel_tolerance * base, memory_abs_tolerance bytes)."""

    tolerance: float = 0.05
    alpha: float = 0.01
    memory_rel_tolerance: float = 0.01
    memory_abs_tolerance: int = MIB
    allow_missing: bool = False
    allow_cross_machine: bool = False

    def __post_init__(self) -> None:
        if not (self.tolerance >= 0 and math.isfinite(self.tolerance)):
            raise ValueError(f"tolerance must be a finite number >= 0, got {self.tolerance}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not (self.memory_rel_tolerance >= 0 and self.memory_abs_tolerance >= 0):
            raise ValueError("memory tolerances must be >= 0")

    @property
    def regression_labels(self) -> frozenset[str]:
        return ALWAYS_REGRESSIONS if self.allow_missing else REGRESSIONS


@dataclass(frozen=True)
class SettingVerdict:
    """The gate's finding for one setting id. Medians in seconds, memory in bytes; None where not applicable."""

    id: str
    labels: tuple[str, ...]
    base_status: str | None
    new_status: str | None
    base_median_s: float | None = None
    new_median_s: float | None = None
    ratio: float | None = None  # new median / base median
    p_value: float | None = None  # one-sided Mann–Whitney U, in the direction the median moved
    base_memory_bytes: int | None = None
    new_memory_bytes: int | None = None
    cross_machine: bool = False
    regression: bool = False
    detail: str = ""


@dataclass
class Comparison:
    """All verdicts of one base-vs-new comparison."""

    verdicts: list[SettingVerdict]
    options: GateOptions
    base_path: str = ""
    new_path: str = ""
    differences: dict[str, tuple] = field(default_factory=dict)  # fingerprint fields; empty unless cross-machine

    @property
    def cross_machine(self) -> bool:
        return bool(self.differences)

    @property
    def regressions(self) -> list[SettingVerdict]:
        return [v for v in self.verdicts if v.regression]

    @property
    def has_regression(self) -> bool:
        return any(v.regression for v in self.verdicts)

    @property
    def counts(self) -> dict[str, int]:
        """How many settings carry each label (a setting may carry a speed and a memory label)."""
        counter = Counter(label for v in self.verdicts for label in v.labels)
        return {label: counter[label] for label in LABELS if counter[label]}

    def summary(self) -> str:
        """One line, e.g. '12 settings: 2 regressions (1 slower, 1 now-oom); 9 same, 1 faster'."""
        regression_labels = self.options.regression_labels
        counts = self.counts
        bad = [f"{n} {label}" for label, n in counts.items() if label in regression_labels]
        rest = [f"{n} {label}" for label, n in counts.items() if label not in regression_labels]
        n_reg = len(self.regressions)
        n = len(self.verdicts)
        text = f"{n} setting{'s' if n != 1 else ''}: {n_reg} regression{'s' if n_reg != 1 else ''}"
        if bad:
            text += f" ({', '.join(bad)})"
        if rest:
            text += f"; {', '.join(rest)}"
        if self.cross_machine:
            text += " [CROSS-MACHINE: different fingerprints, numbers not comparable]"
        return text


def _median(result: Result) -> float | None:
    """Median of the raw samples, or pytest-benchmark's median when the samples were not kept."""
    if result.samples:
        return float(np.median(result.samples))
    return result.median_s


def _p_value(base: list[float], new: list[float], alternative: str) -> float | None:
    """One-sided Mann–Whitney U p-value that `new` is stochastically greater/less than `base`; None if too few."""
    if len(base) < MIN_SAMPLES or len(new) < MIN_SAMPLES:
        return None
    p = float(stats.mannwhitneyu(new, base, alternative=alternative).pvalue)
    return None if math.isnan(p) else p


def _speed(base: Result, new: Result, options: GateOptions, spread: float = 0.0) -> tuple[str, dict, str]:
    """Speed label, the numbers behind it, and a detail text. `spread` is the baseline's run-to-run spread for
    this setting; the tolerance is never tighter than it."""
    b, n = _median(base), _median(new)
    if b is None or n is None or b <= 0 or n <= 0:
        return "inconclusive", {"base_median_s": b, "new_median_s": n}, "no timing to compare"
    ratio = n / b
    tolerance = max(options.tolerance, spread)
    widened = f" (tolerance ±{tolerance:.0%} from the baseline's run-to-run spread)" if spread > options.tolerance else ""
    factor = 1 + tolerance
    # Compare both directions with the same expression, so A-vs-B and B-vs-A always mirror each other.
    if n > b * factor:
        direction, moved = "greater", "slower"
    elif b > n * factor:
        direction, moved = "less", "faster"
    else:
        direction, moved = ("greater" if n >= b else "less"), None
    p = _p_value(base.samples, new.samples, direction)
    numbers = {"base_median_s": b, "new_median_s": n, "ratio": ratio, "p_value": p}
    change = f"{(ratio - 1) * 100:+.1f}%"
    if moved is None:
        return "same", numbers, f"{change} within ±{tolerance:.0%}{widened}"
    if p is None:
        return "inconclusive", numbers, f"{change} but fewer than {MIN_SAMPLES} samples on a side{widened}"
    if p < options.alpha:
        return moved, numbers, f"{change} (p={p:.2g}){widened}"
    return "inconclusive", numbers, f"{change} not significant (p={p:.2g} >= {options.alpha:g}){widened}"


def _memory(base: Result, new: Result, options: GateOptions) -> tuple[str | None, dict, str]:
    """Memory label (None when within tolerance or not measured on both sides), numbers and detail."""
    b, n = base.get("activation_peak_bytes"), new.get("activation_peak_bytes")
    numbers = {"base_memory_bytes": b, "new_memory_bytes": n}
    if b is None or n is None:
        return None, numbers, ""
    allowed = max(options.memory_rel_tolerance * b, options.memory_abs_tolerance)
    delta = n - b
    text = f"memory {delta / MIB:+.1f} MiB"
    if delta > allowed:
        return "memory-up", numbers, text
    if -delta > allowed:
        return "memory-down", numbers, text
    return None, numbers, ""


def _status_label(base: Result | None, new: Result | None) -> tuple[str | None, str]:
    """The label decided by presence and status alone, or None when both ran ("ok") and numbers decide."""
    if new is None:
        return "missing", "not in the new run"
    reason = f": {new.reason}" if new.reason else ""
    if base is None:
        return "new", "not in the baseline" + ("" if new.status == "ok" else f"; {new.status}{reason}")
    if base.status == new.status:
        return (None, "") if base.status == "ok" else ("same", f"{new.status} in both")
    if new.status in FAILED:
        return f"now-{new.status}", f"was {base.status}, now {new.status}{reason}"
    if new.status == "skipped":
        return "missing", f"was {base.status}, now skipped{reason}"
    if base.status in FAILED:
        return "fixed", f"was {base.status}, now runs"
    return "new", "skipped in the baseline, now runs"


def _side_numbers(result: Result | None, side: str) -> dict:
    """Median and memory of one side that ran, for a verdict decided by status (shown, not compared)."""
    if result is None or result.status != "ok":
        return {}
    return {f"{side}_median_s": _median(result), f"{side}_memory_bytes": result.get("activation_peak_bytes")}


def compare_result(base: Result | None, new: Result | None, options: GateOptions = GateOptions(),
                   cross_machine: bool = False, spread: float = 0.0) -> SettingVerdict:
    """The verdict for one setting present in `base`, `new` or both (`spread`: see run_to_run_spread)."""
    either = new if new is not None else base
    assert either is not None
    common = {"id": either.id, "base_status": base.status if base else None,
              "new_status": new.status if new else None, "cross_machine": cross_machine}
    label, detail = _status_label(base, new)
    if label is not None:
        labels = (label,)
        numbers = {**_side_numbers(base, "base"), **_side_numbers(new, "new")}
    else:
        speed, numbers, detail = _speed(base, new, options, spread)
        memory, memory_numbers, memory_detail = _memory(base, new, options)
        numbers.update(memory_numbers)
        labels = (speed,) if memory is None else (speed, memory)
        detail = "; ".join(t for t in (detail, memory_detail) if t)
    regression = any(label in options.regression_labels for label in labels)
    return SettingVerdict(labels=labels, regression=regression, detail=detail, **common, **numbers)


def compare(base: Run, new: Run, options: GateOptions = GateOptions()) -> Comparison:
    """Compare every setting of `base` and `new` (their union). Raises FingerprintMismatch when the runs belong to
    different fingerprints, unless `options.allow_cross_machine`."""
    diff = fingerprint.differences(base.fingerprint, new.fingerprint)
    if diff and not options.allow_cross_machine:
        raise FingerprintMismatch(diff)
    ids = list(base.results) + [i for i in new.results if i not in base.results]
    history = _history(base.raw)
    verdicts = [compare_result(base.results.get(i), new.results.get(i), options, bool(diff),
                               run_to_run_spread(history.get(i, []))) for i in ids]
    return Comparison(verdicts, options, base.path, new.path, diff)


def gate_against_baseline(run: Run, directory: Path | str = DEFAULT_DIR,
                          options: GateOptions = GateOptions()) -> Comparison:
    """Compare `run` with the stored baseline of its fingerprint (what the pytest plugin calls at session end)."""
    path = baseline_path(run.slug, directory)
    if not path.exists():
        raise NoBaselineError(
            f"no baseline for this machine ({path} does not exist); create one with "
            f"`pytest benchmarks --benchmark-only --vitcnn-save-baseline` or `python -m vitcnn baseline save RUN.json`"
        )
    return compare(load_baseline(path), run, options)


# ----------------------------------------------------------------------------------------------------------- output


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f}"


def _time_cell(seconds: float | None, status: str | None) -> str:
    """A median in ms, or the status when the setting did not run (absent: '-')."""
    if status is None:
        return "-"
    return _ms(seconds) if status == "ok" else status


def _memory_cell(v: SettingVerdict) -> str:
    if v.base_memory_bytes is None and v.new_memory_bytes is None:
        return "-"

    def mib(x: int | None) -> str:
        return "-" if x is None else f"{x / MIB:.1f}"

    return f"{mib(v.base_memory_bytes)}→{mib(v.new_memory_bytes)}"


def _row(v: SettingVerdict) -> list[str]:
    return [
        v.id,
        ",".join(v.labels) + (" !" if v.regression else ""),
        _time_cell(v.base_median_s, v.base_status),
        _time_cell(v.new_median_s, v.new_status),
        "-" if v.ratio is None else f"{v.ratio:.3f}",
        "-" if v.p_value is None else f"{v.p_value:.2g}",
        _memory_cell(v),
        v.detail,
    ]


HEADER = ["setting", "verdict", "base ms", "new ms", "ratio", "p", "act. MiB", "detail"]


def _header_lines(comparison: Comparison) -> list[str]:
    lines = [comparison.summary()]
    if comparison.cross_machine:
        lines += [f"  fingerprint {k}: base={a!r} new={b!r}" for k, (a, b) in comparison.differences.items()]
    return lines


def format_table(comparison: Comparison) -> str:
    """Fixed-width text table for a terminal; regressions are marked with '!'."""
    rows = [HEADER] + [_row(v) for v in comparison.verdicts]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER) - 1)]
    right = {2, 3, 4, 5}  # numeric columns

    def fmt(row: list[str]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells + [row[-1]]).rstrip()

    rule = "-" * (sum(widths) + 2 * len(widths) + len(HEADER[-1]))
    return "\n".join(_header_lines(comparison) + [fmt(rows[0]), rule] + [fmt(r) for r in rows[1:]]) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(comparison: Comparison) -> str:
    """The summary line, then a Markdown table (e.g. for $GITHUB_STEP_SUMMARY); regression labels are bold."""
    lines = [_md_cell(comparison.summary()), ""]
    if comparison.cross_machine:
        lines += ["> **Cross-machine comparison**: the fingerprints differ, so these numbers are not comparable.", ""]
        lines += [f"> - `{k}`: base `{a!r}`, new `{b!r}`" for k, (a, b) in comparison.differences.items()] + [""]
    lines += ["| " + " | ".join(HEADER) + " |", "|" + "|".join(["---", "---"] + ["---:"] * 5 + ["---"]) + "|"]
    for v in comparison.verdicts:
        row = _row(v)
        row[0] = f"`{row[0]}`"
        row[1] = ", ".join(f"**{label}**" if label in comparison.options.regression_labels else label
                           for label in v.labels)
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------------------------------- CLI


def _options_from_args(args: argparse.Namespace) -> GateOptions:
    return GateOptions(
        tolerance=args.tolerance, alpha=args.alpha, memory_rel_tolerance=args.memory_tolerance,
        memory_abs_tolerance=int(args.memory_abs_mib * MIB), allow_missing=args.allow_missing,
        allow_cross_machine=args.allow_cross_machine,
    )


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def cmd_compare(args: argparse.Namespace) -> int:
    """Exit 0: no regression; 1: regression; 2: bad options, unreadable file or fingerprint mismatch."""
    try:
        options = _options_from_args(args)
        comparison = compare(load_run(args.base), load_run(args.new), options)
    except (ValueError, RunFileError) as exc:  # FingerprintMismatch and RunFileError are ValueErrors too
        return _error(str(exc))
    print(format_table(comparison), end="")
    if args.markdown:
        try:
            Path(args.markdown).write_text(to_markdown(comparison))
        except OSError as exc:
            return _error(f"cannot write {args.markdown}: {exc.strerror or exc}")
    return 1 if comparison.has_regression else 0


def cmd_baseline_save(args: argparse.Namespace) -> int:
    """Exit 0 and print the path; 2 on an unreadable run, a corrupt baseline or a fingerprint mismatch."""
    try:
        path = save_baseline(load_run(args.run), args.dir, allow_cross_machine=args.allow_cross_machine)
    except (ValueError, OSError) as exc:
        return _error(str(exc))
    print(path)
    return 0


def cmd_baseline_show(args: argparse.Namespace) -> int:
    """List stored baselines: slug, device and status counts. Exit 2 if any is unreadable."""
    paths = sorted(Path(args.dir).glob("*.json"))
    if not paths:
        print(f"no baselines in {args.dir}")
        return 0
    status = 0
    for path in paths:
        try:
            run = load_run(path)
        except RunFileError as exc:
            print(f"{path.stem}: UNREADABLE ({exc})", file=sys.stderr)
            status = 2
            continue
        counts = Counter(r.status for r in run.results.values())
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        print(f"{path.stem}: {run.device_label}; {len(run.results)} settings ({summary})")
    return status


def add_cli(subparsers) -> None:
    """Register `compare` and `baseline {save,show}` on the `python -m vitcnn` command line."""
    defaults = GateOptions()
    p = subparsers.add_parser("compare", help="compare two run files; exit 1 on a regression",
                              description=cmd_compare.__doc__)
    p.add_argument("base", help="baseline run JSON")
    p.add_argument("new", help="new run JSON")
    p.add_argument("--tolerance", type=float, default=defaults.tolerance,
                   help="speed: flag only if the median is slower by more than this fraction (default %(default)s)")
    p.add_argument("--alpha", type=float, default=defaults.alpha,
                   help="significance level of the one-sided Mann-Whitney U test (default %(default)s)")
    p.add_argument("--memory-tolerance", type=float, default=defaults.memory_rel_tolerance,
                   help="relative activation-memory growth allowed (default %(default)s)")
    p.add_argument("--memory-abs-mib", type=float, default=defaults.memory_abs_tolerance / MIB,
                   help="absolute activation-memory growth allowed in MiB (default %(default)s)")
    p.add_argument("--allow-missing", action="store_true", help="settings absent from the new run are no regression")
    p.add_argument("--allow-cross-machine", action="store_true",
                   help="compare runs of different fingerprints anyway (numbers are not comparable)")
    p.add_argument("--markdown", metavar="FILE", help="also write a Markdown summary (e.g. a GitHub job summary)")
    p.set_defaults(handler=cmd_compare)

    b = subparsers.add_parser("baseline", help="manage stored baselines")
    actions = b.add_subparsers(dest="action", required=True)
    save = actions.add_parser("save", help="save/merge a run as its fingerprint's baseline (atomic)",
                              description=cmd_baseline_save.__doc__)
    save.add_argument("run", help="run JSON written by `pytest benchmarks --benchmark-json`")
    save.add_argument("--dir", default=DEFAULT_DIR, help="baseline directory (default %(default)s)")
    save.add_argument("--allow-cross-machine", action="store_true",
                      help="merge even if the existing baseline's fingerprint differs")
    save.set_defaults(handler=cmd_baseline_save)
    show = actions.add_parser("show", help="list stored baselines", description=cmd_baseline_show.__doc__)
    show.add_argument("--dir", default=DEFAULT_DIR, help="baseline directory (default %(default)s)")
    show.set_defaults(handler=cmd_baseline_show)
