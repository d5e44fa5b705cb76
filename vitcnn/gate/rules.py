"""The regression gate: one compare core that judges every setting of two runs, and the three comparisons built on it.

Verdicts per setting (the metrics and their labels are listed once, in vitcnn/gate/metrics.py):
- speed first, decided by the comparison's speed rule (vitcnn/gate/speed.py): a stored baseline (`compare`,
  `gate_against_baseline`: its saved runs as units on every device, vitcnn/gate/stored.py), an interleaved A/B
  (`compare_paired`: processes as the unit) or an A/B by instruction counts (`compare_counted`: the count's label);
- then the deterministic metrics of the setting (memory, instructions, graph breaks, recompiles: no statistics),
  then those decided across the session (speedup over eager, cold compile time);
- status: `now-oom` / `now-error` (it used to run, or failed differently), `fixed`, `missing`, `new`.
Runs of different fingerprints are refused (timings from another GPU, driver or library say nothing about a
regression) unless explicitly allowed; against a fingerprint of the first format (identity incomplete) speed is
not gated, and run conditions that differ (a GPU's power limit and clocks, the malloc policy) are a warning
(vitcnn/fingerprint.py).
Baseline files live in vitcnn/gate/baseline.py; tables of the verdicts in vitcnn/gate/verdicts.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from vitcnn import fingerprint
from vitcnn.gate import baseline, instructions, paired
from vitcnn.gate.comparison import Comparison, SettingVerdict
from vitcnn.gate.metrics import GATED, SPEED, SPEED_LABELS, Finding, GateOptions
from vitcnn.gate.speed import FAR, Counted, Interleaved, OneRun, SpeedFinding, SpeedRule
from vitcnn.gate.stored import MIN_RUNS, SavedRun, StoredRuns
from vitcnn.result import Result
from vitcnn.runfile import Run

FAILED = ("oom", "error")
INCOMPLETE = "speed not gated: identity incomplete"


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


def _setting_findings(base: Result, new: Result, rule: SpeedRule, options: GateOptions) -> list[Finding]:
    """The labelled findings of the deterministic metrics of one setting (not the speed rule's own metric)."""
    metrics = [m for m in GATED.values() if m.scope == "setting" and m is not rule.primary]
    return [f for m in metrics if (f := m.decide()(m, base, new, options)).label]


def _session_findings(pairs: Sequence[tuple[Result, Result]], options: GateOptions
                      ) -> tuple[dict[str, list[Finding]], list[str]]:
    """Findings decided across the session (speedup over eager, cold compile time) per setting id, and notes."""
    triples = [(b.id, b, n) for b, n in pairs]
    found: dict[str, list[Finding]] = {}
    notes = []
    for metric in (m for m in GATED.values() if m.scope == "session"):
        by_id, note = metric.decide()(triples, options)
        for i, finding in by_id.items():
            found.setdefault(i, []).append(finding)
        notes += [note] if note else []
    return found, notes


def _unless_contended(primary: SpeedFinding, base: Result, new: Result, rule: SpeedRule) -> SpeedFinding:
    """A speed label read from a run timed beside a busy neighbour (vitcnn/measure/host.py: `contended`) becomes
    `inconclusive`, with the reason: neither a slowdown nor a reassuring `same` can be read from it."""
    reasons = [reason for result in (base, new) if (reason := result.get("contended"))]
    if not reasons or rule.primary is not SPEED or primary.found.label not in SPEED_LABELS:
        return primary
    why = f"speed not judged, timed beside a busy neighbour: {'; '.join(reasons)}"
    return primary._replace(found=primary.found._replace(label="inconclusive"),
                            caveat="; ".join(t for t in (primary.caveat, why) if t))


def judge(pairs: Sequence[tuple[Result | None, Result | None]], rule: SpeedRule, options: GateOptions,
          cross_machine: bool = False) -> tuple[list[SettingVerdict], list[str]]:
    """The compare core: a verdict for every (base, new) pair of one setting (either may be absent), and the notes
    of the session-wide findings. The speed rule gives the first label of a setting both ran; the deterministic
    metrics and the session's findings follow it."""
    both = [(i, b, n) for i, (b, n) in enumerate(pairs) if _ran(b) and _ran(n)]
    first = rule.findings(both, options)
    session, notes = _session_findings([(b, n) for _, b, n in both], options)
    verdicts = []
    for i, (base, new) in enumerate(pairs):
        either = base if base is not None else new
        assert either is not None
        label, detail = _status_label(base, new)
        primary = SpeedFinding(Finding(label, detail))
        if label is None:
            primary = _unless_contended(first[i], base, new, rule)
            setting = _setting_findings(base, new, rule, options)
            detail = "; ".join(t for t in (primary.found.detail, *(f.detail for f in setting)) if t)
            detail = "; ".join([detail, *([primary.caveat] if primary.caveat else []),
                                *(f.detail for f in session.get(base.id, []))])
            labels = (primary.found.label, *(f.label for f in setting), *(f.label for f in session.get(base.id, [])))
            renamed = "" if base.id == new.id else f"B runs {new.id}; "
            detail = renamed + detail
        else:
            labels = (label,)
        ran_base, ran_new = _ran(base), _ran(new)
        verdicts.append(SettingVerdict(
            id=either.id, labels=labels,
            base_status=base.status if base else None, new_status=new.status if new else None,
            base_median_s=ran_base.median_s if ran_base else None, new_median_s=ran_new.median_s if ran_new else None,
            ratio=primary.found.ratio, p_value=primary.found.p_value,
            base_memory_bytes=ran_base.activation_peak_bytes if ran_base else None,
            new_memory_bytes=ran_new.activation_peak_bytes if ran_new else None,
            cross_machine=cross_machine, regression=options.is_regression(labels), detail=detail,
            ci_low=primary.ci_low, ci_high=primary.ci_high, detectable=primary.detectable,
            processes=primary.processes,
            base_instructions=instructions.per_call(base), new_instructions=instructions.per_call(new)))
    return verdicts, notes


def compare_result(base: Result | None, new: Result | None, options: GateOptions = GateOptions(),
                   cross_machine: bool = False, spread: float = 0.0) -> SettingVerdict:
    """The verdict for one setting present in `base`, `new` or both, its speed from the two runs' samples with a
    tolerance no tighter than `spread` (speed.run_to_run_spread)."""
    either = new if new is not None else base
    assert either is not None
    [verdict], _ = judge([(base, new)], OneRun({either.id: spread}), options, cross_machine)
    return verdict


def compare(base: Run, new: Run, options: GateOptions = GateOptions()) -> Comparison:
    """Compare every setting of `base` (a stored baseline or a plain run file) and `new` (their union). Raises
    FingerprintMismatch when the runs belong to different fingerprints, unless `options.allow_cross_machine`.
    Speed is decided by the saved runs of `base` as units, on every device (vitcnn/gate/stored.py)."""
    diff = fingerprint.differences(base.fingerprint, new.fingerprint)
    if diff and not options.allow_cross_machine:
        raise baseline.FingerprintMismatch(diff)
    ids = list(base.results) + [i for i in new.results if i not in base.results]
    rule = StoredRuns(base)
    verdicts, session_notes = judge([(base.results.get(i), new.results.get(i)) for i in ids], rule, options,
                                    bool(diff))
    incomplete = {side: missing for side, run in (("base", base), ("new", new))
                  if (missing := fingerprint.missing_identity(run.fingerprint))}
    if incomplete:
        verdicts = [identity_speed(v, options) for v in verdicts]
    comparison = Comparison(verdicts, options, base.path, new.path, diff, incomplete,
                            fingerprint.condition_changes(base.fingerprint, new.fingerprint),
                            base_commit=base.code.get("commit") or None)
    comparison.notes += single_run_note(base, rule.runs) + rule.notes + identity_notes(comparison) + session_notes
    return comparison


def single_run_note(base: Run, saved: list[SavedRun]) -> list[str]:
    """What a comparison against one plain run file can and cannot decide (nothing when `base` is a baseline: it
    has `saved` runs or an older baseline's medians)."""
    if saved or base.median_history:
        return []
    return [f"BASE IS ONE RUN, not a baseline: failures, memory, compile counts and instruction counts are judged "
            f"exactly; speed only beyond {FAR:g}x, because one run cannot show how far the next run of unchanged "
            f"code lands (separate runs on this project's 2-core VMs differed by up to 1.8x). To judge smaller "
            f"changes, save {MIN_RUNS} or more runs as a baseline (`python -m vitcnn baseline save RUN.json ...`) "
            f"or compare the two commits with `python -m vitcnn ab`."]


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
    labels = ("inconclusive", *verdict.labels[1:])
    return replace(verdict, labels=labels, detail=f"{verdict.detail}; {INCOMPLETE}",
                   regression=options.is_regression(labels))


def identity_notes(comparison: Comparison) -> list[str]:
    """What the tables print about the machines: an incomplete identity, run conditions that differ."""
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
        which = "GPU conditions" if set(comparison.condition_changes) <= set(fingerprint.GPU_CONDITIONS) else \
            "run conditions"
        notes.append(f"WARNING: {which} differ ({changes}): speed differences may come from them, not "
                     f"from the code.")
    return notes


def gate_against_baseline(run: Run, directory: Path | str = baseline.DEFAULT_DIR,
                          options: GateOptions = GateOptions()) -> Comparison:
    """Compare `run` with the stored baseline of its fingerprint (what the pytest plugin calls at session end),
    or, when there is none, with a baseline an older vitcnn saved under an older slug of this machine (its
    identity is incomplete: compare says so and gates no speed)."""
    base = baseline.require_baseline(run.slug, directory, fingerprint.older_slugs(run.fingerprint))
    return compare(base, run, options)


# ---------------------------------------------------------------------------------------------------- A/B sessions


class PairedInput(NamedTuple):
    """One setting of an A/B session: each side's Result (side A is the base) and its timed blocks."""

    a: Result
    b: Result
    blocks: list[paired.Block]


def compare_paired(inputs: list[PairedInput], options: GateOptions = GateOptions(tolerance=0.03, alpha=0.05),
                   notes: list[str] | None = None, looks: int = 1, detect: float = 0.05,
                   by_machine: bool = True) -> Comparison:
    """Verdicts of an interleaved A/B session (vitcnn/gate/paired.py): `slower`/`faster`/`same`/`inconclusive`
    from the blocks, processes as the unit, corrected across all settings of the session, with `options.tolerance`
    as the threshold, `options.alpha` as the significance level (spent over `looks` looks) and `detect` as the
    slowdown a `same` must have resolved (`by_machine`: in machine time where the blocks allow it); the other
    metrics and status as in the stored-baseline gate."""
    rule = Interleaved([x.blocks for x in inputs], looks, detect, by_machine)
    verdicts, session_notes = judge([(x.a, x.b) for x in inputs], rule, options)
    comparison = Comparison(verdicts, options, "side A", "side B")
    comparison.notes += list(notes or []) + session_notes
    if comparison.worst_detectable is not None:
        comparison.notes.append(f"CI: {1 - 2 * options.alpha / looks:.1%} interval of B/A (each end the one-sided "
                                f"test at alpha {options.alpha:g} spent over {looks} look{'s' if looks > 1 else ''}); "
                                f"detectable: the smallest "
                                f"slowdown the setting's measurement would have flagged (80% power); `same` "
                                f"resolved {detect:.0%} or better, `inconclusive` did not")
    return comparison


def compare_counted(pairs: list[tuple[Result, Result]], options: GateOptions = GateOptions(),
                    notes: list[str] | None = None) -> Comparison:
    """Verdicts of an A/B by instruction counts alone (`vitcnn ab --metric instructions`; side A is the base): the
    count's `instructions-up` / `instructions-down` beyond `options.instructions_tolerance`, else `same`, as the
    first label; the other deterministic metrics and the status labels as everywhere. Nothing was timed."""
    verdicts, session_notes = judge(pairs, Counted(), options)
    comparison = Comparison(verdicts, options, "side A", "side B")
    comparison.notes += [*(notes or []), f"instructions per call counted under Callgrind; `instructions-up` beyond "
                                         f"+{options.instructions_tolerance:.1%}", *session_notes]
    return comparison
