"""The regression gate: the verdict rules that compare a new run with a base run, setting by setting.

Verdicts per setting:
- speed: `slower` / `faster` only when the median moved by more than the tolerance AND a one-sided Mann–Whitney U
  test on the raw samples is significant; a big move without significance is `inconclusive`, a small one `same`.
  The tolerance is never tighter than the run-to-run spread the baseline recorded for that setting;
- memory: `memory-up` / `memory-down` when the activation peak moved by more than max(relative, absolute) tolerance;
- instructions (vitcnn/gate/instructions.py): `instructions-up` / `instructions-down` when the Callgrind count of a
  call moved beyond a relative tolerance (deterministic: one run on each side decides it; `compare_counted` is the
  A/B without timing);
- compile (vitcnn/gate/compiled.py): `graph-breaks-up` / `recompiles-up` when Dynamo broke the graph or recompiled
  more often than in the base (deterministic: exact on any machine); `speedup-down` when the paired speedup over
  eager fell; `compile-slower` when the session's cold compile times grew;
- status: `now-oom` / `now-error` (it used to run, or failed differently), `fixed`, `missing`, `new`.
On CPU, the stored-baseline gate decides speed from the spread between the baseline's saved runs, each run a unit
(history_speed), and not at all with fewer than three of them: the label becomes `inconclusive` and says why.
Interleaved A/B (`vitcnn ab`) is decided by compare_paired with the paired statistics of vitcnn/gate/paired.py.
Runs of different fingerprints are refused (timings from another GPU, driver or library say nothing about a
regression) unless explicitly allowed; against a fingerprint of the first format (identity incomplete) speed is
not gated, and GPU conditions that differ (power limit, clocks) are a warning (vitcnn/fingerprint.py).
Baseline files live in vitcnn/gate/baseline.py; tables of the verdicts in vitcnn/gate/verdicts.py; the command
line in vitcnn/cli.py.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import stats

from vitcnn import fingerprint
from vitcnn.gate import baseline, compiled, instructions, paired
from vitcnn.gate.compiled import Finding
from vitcnn.runfile import Result, Run
from vitcnn.table import MIB

MIN_SAMPLES = 3  # fewer raw samples on a side and no significance test is attempted
FAILED = ("oom", "error")

LABELS = ("slower", "faster", "inconclusive", "same", "memory-up", "memory-down", "instructions-up",
          "instructions-down", "graph-breaks-up", "recompiles-up", "speedup-down", "compile-slower", "now-oom",
          "now-error", "fixed", "missing", "new")
ALWAYS_REGRESSIONS = frozenset({"slower", "memory-up", "instructions-up", "graph-breaks-up", "recompiles-up",
                                "speedup-down", "compile-slower", "now-oom", "now-error"})
REGRESSIONS = ALWAYS_REGRESSIONS | {"missing"}


@dataclass(frozen=True)
class GateOptions:
    """Thresholds of the gate. Speed: median ratio beyond 1+tolerance and Mann–Whitney p < alpha. Memory: growth
    beyond max(memory_rel_tolerance * base, memory_abs_tolerance bytes)."""

    tolerance: float = 0.05
    alpha: float = 0.01
    memory_rel_tolerance: float = 0.01
    memory_abs_tolerance: int = MIB
    speedup_tolerance: float = 0.20  # speedup over eager may fall this much (new/base speedup >= 1/1.20)
    compile_tolerance: float = 0.20  # cold compile time may grow this much (geometric mean over the session)
    instructions_tolerance: float = instructions.DEFAULT_TOLERANCE  # a call's instruction count may grow this much
    allow_missing: bool = False
    allow_cross_machine: bool = False

    def __post_init__(self) -> None:
        if not (self.tolerance >= 0 and math.isfinite(self.tolerance)):
            raise ValueError(f"tolerance must be a finite number >= 0, got {self.tolerance}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not (self.memory_rel_tolerance >= 0 and self.memory_abs_tolerance >= 0):
            raise ValueError("memory tolerances must be >= 0")
        if not (self.speedup_tolerance >= 0 and self.compile_tolerance >= 0 and self.instructions_tolerance >= 0):
            raise ValueError("speedup, compile and instructions tolerances must be >= 0")

    @property
    def regression_labels(self) -> frozenset[str]:
        return ALWAYS_REGRESSIONS if self.allow_missing else REGRESSIONS

    def is_regression(self, labels: tuple[str, ...]) -> bool:
        """Whether any of a setting's labels is a regression under these options."""
        return any(label in self.regression_labels for label in labels)


@dataclass(frozen=True)
class SettingVerdict:
    """The gate's finding for one setting id. Medians in seconds, memory in bytes; None where not applicable
    (a side that did not run ok has no median or memory)."""

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
    ci_low: float | None = None  # A/B only: confidence interval of the ratio, the smallest slowdown the
    ci_high: float | None = None  # measurement would have caught (80% power) and the processes per side
    detectable: float | None = None
    processes: int | None = None
    base_instructions: float | None = None  # instructions per call (Callgrind) of a side that was counted
    new_instructions: float | None = None


@dataclass
class Comparison:
    """All verdicts of one base-vs-new comparison."""

    verdicts: list[SettingVerdict]
    options: GateOptions
    base_path: str = ""
    new_path: str = ""
    differences: dict[str, tuple] = field(default_factory=dict)  # fingerprint fields; empty unless cross-machine
    incomplete: dict[str, tuple[str, ...]] = field(default_factory=dict)  # side -> identity fields it lacks
    condition_changes: dict[str, tuple] = field(default_factory=dict)  # GPU conditions that differ (warned)
    notes: list[str] = field(default_factory=list)  # what the tables print under the summary line
    worst_detectable: float | None = None  # A/B only: the largest of the settings' detectable slowdowns

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
        if self.worst_detectable is not None:
            text += f"; worst detectable slowdown {_percent(self.worst_detectable)}"
        if self.cross_machine:
            text += " [CROSS-MACHINE: different fingerprints, numbers not comparable]"
        return text


def run_to_run_spread(medians: list[float]) -> float:
    """max/min - 1 over a setting's saved-run medians (0 with fewer than two): the noise one run cannot show."""
    if len(medians) < 2 or min(medians) <= 0:
        return 0.0
    return max(medians) / min(medians) - 1


def _p_value(base: list[float], new: list[float], alternative: str) -> float | None:
    """One-sided Mann–Whitney U p-value that `new` is stochastically greater/less than `base`; None if too few."""
    if len(base) < MIN_SAMPLES or len(new) < MIN_SAMPLES:
        return None
    p = float(stats.mannwhitneyu(new, base, alternative=alternative).pvalue)
    return None if math.isnan(p) else p


def _speed(base: Result, new: Result, options: GateOptions, spread: float = 0.0) -> Finding:
    """Speed label and detail. `spread` is the baseline's run-to-run spread for this setting; the tolerance is
    never tighter than it."""
    b, n = base.median_s, new.median_s
    if b is None or n is None or b <= 0 or n <= 0:
        return Finding("inconclusive", "no timing to compare")
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
    change = f"{(ratio - 1) * 100:+.1f}%"
    if moved is None:
        return Finding("same", f"{change} within ±{tolerance:.0%}{widened}", ratio, p)
    if p is None:
        return Finding("inconclusive", f"{change} but fewer than {MIN_SAMPLES} samples on a side{widened}", ratio, p)
    if p < options.alpha:
        return Finding(moved, f"{change} (p={p:.2g}){widened}", ratio, p)
    return Finding("inconclusive", f"{change} not significant (p={p:.2g} >= {options.alpha:g}){widened}", ratio, p)


def _memory(base: Result, new: Result, options: GateOptions) -> Finding:
    """Memory label (None when within tolerance or not measured on both sides) and detail."""
    b, n = base.activation_peak_bytes, new.activation_peak_bytes
    if b is None or n is None:
        return Finding(None, "")
    allowed = max(options.memory_rel_tolerance * b, options.memory_abs_tolerance)
    delta = n - b
    text = f"memory {delta / MIB:+.1f} MiB"
    if delta > allowed:
        return Finding("memory-up", text)
    if -delta > allowed:
        return Finding("memory-down", text)
    return Finding(None, "")


def _with_deterministic(speed: Finding, base: Result, new: Result, options: GateOptions) -> tuple[tuple, str]:
    """Labels and detail of a setting both sides ran: the speed finding first (always), then memory, instruction
    and compile findings, which need no statistics."""
    others = [f for f in (_memory(base, new, options),
                          instructions.finding(base, new, options.instructions_tolerance),
                          *compiled.counts(base, new)) if f.label]
    labels = (speed.label, *(f.label for f in others))
    return labels, "; ".join(t for t in (speed.detail, *(f.detail for f in others)) if t)


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


def _ran(result: Result | None) -> Result | None:
    """The result when it ran ok (its numbers are shown), else None."""
    return result if result is not None and result.status == "ok" else None


def compare_result(base: Result | None, new: Result | None, options: GateOptions = GateOptions(),
                   cross_machine: bool = False, spread: float = 0.0) -> SettingVerdict:
    """The verdict for one setting present in `base`, `new` or both (`spread`: see run_to_run_spread)."""
    either = new if new is not None else base
    assert either is not None
    label, detail = _status_label(base, new)
    ratio = p_value = None
    if label is not None:
        labels = (label,)
    else:
        speed = _speed(base, new, options, spread)
        labels, detail = _with_deterministic(speed, base, new, options)
        ratio, p_value = speed.ratio, speed.p_value
    ran_base, ran_new = _ran(base), _ran(new)
    return SettingVerdict(
        id=either.id, labels=labels,
        base_status=base.status if base else None, new_status=new.status if new else None,
        base_median_s=ran_base.median_s if ran_base else None, new_median_s=ran_new.median_s if ran_new else None,
        ratio=ratio, p_value=p_value,
        base_memory_bytes=ran_base.activation_peak_bytes if ran_base else None,
        new_memory_bytes=ran_new.activation_peak_bytes if ran_new else None,
        cross_machine=cross_machine, regression=options.is_regression(labels), detail=detail,
        base_instructions=instructions.per_call(base), new_instructions=instructions.per_call(new),
    )


def compare(base: Run, new: Run, options: GateOptions = GateOptions(), speed_needs_history: bool = False
            ) -> Comparison:
    """Compare every setting of `base` and `new` (their union). Raises FingerprintMismatch when the runs belong to
    different fingerprints, unless `options.allow_cross_machine`. With `speed_needs_history` (a CPU), speed is
    decided from the baseline's saved runs, each run a unit (history_speed), and not at all for a setting with
    fewer than MIN_HISTORY of them (ungated_speed)."""
    diff = fingerprint.differences(base.fingerprint, new.fingerprint)
    if diff and not options.allow_cross_machine:
        raise baseline.FingerprintMismatch(diff)
    ids = list(base.results) + [i for i in new.results if i not in base.results]
    verdicts = []
    for i in ids:
        history = base.median_history.get(i, [])
        verdict = compare_result(base.results.get(i), new.results.get(i), options, bool(diff),
                                 run_to_run_spread(history))
        if speed_needs_history and verdict.labels[0] in SPEED_LABELS and verdict.new_median_s:
            if len(history) < MIN_HISTORY:
                verdict = ungated_speed(verdict, len(history), options)
            else:
                finding = history_speed(history, verdict.new_median_s, options, len(ids))
                labels, detail = _with_deterministic(finding, base.results[i], new.results[i], options)
                verdict = replace(verdict, labels=labels, ratio=finding.ratio, p_value=finding.p_value,
                                  detail=detail, regression=options.is_regression(labels))
        verdicts.append(verdict)
    verdicts, compile_note = with_session_findings(verdicts, base.results, new.results, options)
    incomplete = {side: missing for side, run in (("base", base), ("new", new))
                  if (missing := fingerprint.missing_identity(run.fingerprint))}
    if incomplete:
        verdicts = [identity_speed(v, options) for v in verdicts]
    comparison = Comparison(verdicts, options, base.path, new.path, diff, incomplete,
                            fingerprint.condition_changes(base.fingerprint, new.fingerprint))
    if speed_needs_history:
        comparison.notes.append(CPU_NOTE)
    comparison.notes += identity_notes(comparison) + ([compile_note] if compile_note else [])
    return comparison


def with_session_findings(verdicts: list[SettingVerdict], base: dict[str, Result], new: dict[str, Result],
                          options: GateOptions) -> tuple[list[SettingVerdict], str | None]:
    """`verdicts` with the labels decided across the session (compiled.py: `speedup-down`, `compile-slower`)
    added, for settings that ran ok on both sides; and the note on the session's cold compile times."""
    both = [(v.id, base[v.id], new[v.id]) for v in verdicts if v.base_status == v.new_status == "ok"]
    found = compiled.speedup_findings(both, options.alpha, options.speedup_tolerance)
    compile_found, note = compiled.compile_findings(both, options.alpha, options.compile_tolerance)
    out = []
    for verdict in verdicts:
        extra = [f for f in (found.get(verdict.id), compile_found.get(verdict.id)) if f is not None]
        if extra:
            labels = (*verdict.labels, *(f.label for f in extra))
            verdict = replace(verdict, labels=labels, detail="; ".join([verdict.detail, *(f.detail for f in extra)]),
                              regression=options.is_regression(labels))
        out.append(verdict)
    return out, note


INCOMPLETE = "speed not gated: identity incomplete"


def identity_speed(verdict: SettingVerdict, options: GateOptions) -> SettingVerdict:
    """`verdict` across an incomplete identity: one side's fingerprint cannot say whether both ran on one kind of
    machine (a model string covers CPUs with and without AMX, 5.8x apart in bf16), so its speed label becomes
    `inconclusive`, never a regression nor a reassuring `same`, unless cross-machine comparison is allowed; then
    the numbers are shown for what they are and the verdict is marked cross-machine. Memory and status labels
    stay."""
    if verdict.labels[0] not in SPEED_LABELS:
        return verdict
    if options.allow_cross_machine:
        return replace(verdict, cross_machine=True)
    return _speed_not_gated(verdict, INCOMPLETE, options)


def _speed_not_gated(verdict: SettingVerdict, why: str, options: GateOptions) -> SettingVerdict:
    """`verdict` with its speed label (always the first) made `inconclusive` and `why` added to its detail."""
    labels = ("inconclusive", *verdict.labels[1:])
    return replace(verdict, labels=labels, detail=f"{verdict.detail}; {why}",
                   regression=options.is_regression(labels))


def identity_notes(comparison: Comparison) -> list[str]:
    """What the tables print about the machines: an incomplete identity, GPU conditions that differ."""
    notes = []
    if comparison.incomplete:
        names = " and the ".join({"base": "baseline", "new": "new run"}[side] for side in comparison.incomplete)
        whose = "their fingerprints come from an older vitcnn and lack" if len(comparison.incomplete) > 1 else \
            "its fingerprint comes from an older vitcnn and lacks"
        missing = sorted({k for fields in comparison.incomplete.values() for k in fields},
                         key=lambda k: [*fingerprint.CPU_IDENTITY, *fingerprint.GPU_IDENTITY].index(k))
        effect = ("speed verdicts are shown cross-machine (allowed)" if comparison.options.allow_cross_machine else
                  "speed is not gated (--allow-cross-machine to compare anyway); memory and failures are")
        notes.append(f"IDENTITY INCOMPLETE in the {names}: {whose} {', '.join(missing)}, so nothing shows that "
                     f"both runs come from one kind of machine; {effect}. Measure (or save) the {names} again "
                     f"with this vitcnn.")
    if comparison.condition_changes:
        changes = "; ".join(f"{k} base={a!r} new={b!r}" for k, (a, b) in comparison.condition_changes.items())
        notes.append(f"WARNING: GPU conditions differ ({changes}): speed differences may come from them, not "
                     f"from the code.")
    return notes


SPEED_LABELS = ("slower", "faster", "same", "inconclusive")
MIN_HISTORY = 3  # saved runs of a setting before the stored-baseline gate decides a CPU run's speed
NOT_GATED = "speed not gated"
CPU_NOTE = (f"CPU speed is judged against the spread between the baseline's saved runs (each run one draw; a "
            f"setting with fewer than {MIN_HISTORY} saved runs is not gated on speed): only changes far beyond "
            f"that spread fail. For small slowdowns on a shared CPU use `python -m vitcnn ab` (docs/gating.md). "
            f"Memory and failures are gated as on GPUs.")


def history_speed(history: list[float], new_median_s: float, options: GateOptions, tests: int) -> Finding:
    """The speed label of a CPU run from the medians of the baseline's saved runs, each saved run one unit.

    Two runs of one setting on a shared CPU differ by more than either run's samples say (another process, a
    different core, a process's own memory placement), so the samples of one run cannot judge the next. The saved
    medians can: on log scale, a new run's median is predicted by their mean with a t interval of n - 1 degrees of
    freedom (prediction, so sqrt(1 + 1/n) times their spread). `slower`/`faster` need the new median beyond that
    bound, at alpha split over the settings and both directions (Bonferroni), AND beyond the tolerance."""
    logs = np.log(np.asarray(history, dtype=float))
    n = len(logs)
    delta = math.log(new_median_s) - float(logs.mean())
    ratio = math.exp(delta)
    scale = float(logs.std(ddof=1)) * math.sqrt(1 + 1 / n)
    level = options.alpha / (2 * max(tests, 1))
    if scale > 0:
        bound = float(stats.t.ppf(1 - level, n - 1)) * scale
        p = float(stats.t.sf(abs(delta) / scale, n - 1))
    else:
        bound, p = 0.0, (0.0 if delta else 1.0)
    margin = max(math.log1p(options.tolerance), bound)
    change = f"{(ratio - 1) * 100:+.1f}% against the mean of {n} saved runs"
    allowed = f"allowed ±{math.expm1(margin):.0%} (their spread {math.expm1(scale):.1%}, t with {n - 1} df)"
    if abs(delta) <= margin:
        return Finding("same", f"{change}, {allowed}", ratio, p)
    return Finding("slower" if delta > 0 else "faster", f"{change} beyond {allowed}", ratio, p)


def ungated_speed(verdict: SettingVerdict, saved: int, options: GateOptions) -> SettingVerdict:
    """`verdict` with its speed label made `inconclusive` (never a regression) and the reason said: a CPU baseline
    with too few saved runs cannot tell a regression from the machine's run-to-run drift. Memory, now-oom and
    now-error labels stay as they are."""
    if verdict.labels[0] not in ("slower", "faster"):
        return verdict
    return _speed_not_gated(verdict, f"{NOT_GATED}: CPU baseline with {saved} saved run(s), needs {MIN_HISTORY}",
                            options)


def gate_against_baseline(run: Run, directory: Path | str = baseline.DEFAULT_DIR,
                          options: GateOptions = GateOptions()) -> Comparison:
    """Compare `run` with the stored baseline of its fingerprint (what the pytest plugin calls at session end),
    or, when there is none, with a baseline an older vitcnn saved under this machine's first-format slug (its
    identity is incomplete: compare says so and gates no speed).

    On CPU, speed is judged by history_speed, and only for settings whose baseline was saved at least MIN_HISTORY
    times; on GPUs a single save is enough (a quiet dedicated GPU is what this gate is for)."""
    base = baseline.require_baseline(run.slug, directory, fingerprint.legacy_slug(run.fingerprint))
    return compare(base, run, options, speed_needs_history=run.fingerprint.get("device") != "cuda")


# ---------------------------------------------------------------------------------------- interleaved A/B (paired)


class PairedInput(NamedTuple):
    """One setting of an A/B session: each side's Result (side A is the base) and its timed blocks."""

    a: Result
    b: Result
    blocks: list[paired.Block]


def compare_paired(inputs: list[PairedInput], options: GateOptions = GateOptions(tolerance=0.03, alpha=0.05),
                   notes: list[str] | None = None, looks: int = 1, detect: float = 0.05) -> Comparison:
    """Verdicts of an interleaved A/B session (vitcnn/gate/paired.py): `slower`/`faster`/`same`/`inconclusive`
    from the blocks, processes as the unit, corrected across all settings of the session, with `options.tolerance`
    as the threshold, `options.alpha` as the significance level (spent over `looks` looks) and `detect` as the
    slowdown a `same` must have resolved; memory and status as in the stored-baseline gate (now-oom/now-error
    when only B fails)."""
    timed = [i for i, x in enumerate(inputs) if x.a.status == x.b.status == "ok" and x.blocks]
    estimates = [paired.estimate(inputs[i].blocks, looks, options.alpha, options.tolerance) for i in timed]
    decided = dict(zip(timed, paired.decide(estimates, options.alpha, options.tolerance, detect)))
    verdicts = []
    for i, x in enumerate(inputs):
        verdict = compare_result(x.a, x.b, options)
        renamed = "" if x.a.id == x.b.id else f"B runs {x.b.id}; "
        if i not in decided:
            verdicts.append(replace(verdict, id=x.a.id, detail=renamed + verdict.detail))
            continue
        d = decided[i]
        e = d.estimate
        detail = (f"{renamed}{(e.ratio - 1) * 100:+.1f}% [{(e.ci_low - 1) * 100:+.1f}%, {(e.ci_high - 1) * 100:+.1f}%]"
                  f" from {e.blocks} blocks of {e.processes} processes per side")
        if d.label == "inconclusive":
            detail += f"; could only have seen a slowdown of {_percent(e.detectable)} (needs {detect:.0%})"
        labels, detail = _with_deterministic(Finding(d.label, detail), x.a, x.b, options)
        verdicts.append(replace(verdict, id=x.a.id, labels=labels, ratio=e.ratio, p_value=d.p_adjusted,
                                ci_low=e.ci_low, ci_high=e.ci_high, detectable=e.detectable,
                                processes=e.processes, detail=detail,
                                regression=options.is_regression(labels)))
    verdicts, compile_note = with_session_findings(verdicts, {x.a.id: x.a for x in inputs},
                                                   {x.a.id: x.b for x in inputs}, options)
    comparison = Comparison(verdicts, options, "side A", "side B")
    comparison.notes += list(notes or []) + ([compile_note] if compile_note else [])
    comparison.worst_detectable = max((v.detectable for v in verdicts if v.detectable is not None), default=None)
    if comparison.worst_detectable is not None:
        comparison.notes.append(f"CI: {1 - options.alpha / looks:.1%} interval of B/A (alpha {options.alpha:g} "
                                f"spent over {looks} look{'s' if looks > 1 else ''}); detectable: the smallest "
                                f"slowdown the setting's measurement would have flagged (80% power); `same` "
                                f"resolved {detect:.0%} or better, `inconclusive` did not")
    return comparison


def compare_counted(pairs: list[tuple[Result, Result]], options: GateOptions = GateOptions(),
                    notes: list[str] | None = None) -> Comparison:
    """Verdicts of an A/B by instruction counts alone (`vitcnn ab --metric instructions`; side A is the base): per
    setting `instructions-up` / `instructions-down` beyond `options.instructions_tolerance`, else `same`; the status
    labels as everywhere (now-oom, now-error, fixed, missing). Nothing was timed: no speed label."""
    verdicts = []
    for a, b in pairs:
        verdict = compare_result(a, b, options)
        if a.status == b.status == "ok":
            found = instructions.finding(a, b, options.instructions_tolerance)
            if found.ratio is None:
                found = Finding("missing", "not counted on both sides")
            labels = (found.label or "same",)
            renamed = "" if a.id == b.id else f"B runs {b.id}; "
            verdict = replace(verdict, labels=labels, ratio=found.ratio, p_value=None, base_median_s=None,
                              new_median_s=None, detail=renamed + found.detail,
                              regression=options.is_regression(labels))
        verdicts.append(replace(verdict, id=a.id))
    comparison = Comparison(verdicts, options, "side A", "side B")
    comparison.notes += [*(notes or []), f"instructions per call counted under Callgrind; `instructions-up` beyond "
                                         f"+{options.instructions_tolerance:.1%}"]
    return comparison


def _percent(fraction: float) -> str:
    return "unbounded" if math.isinf(fraction) else f"{fraction:.1%}"
