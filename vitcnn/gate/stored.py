"""The stored-baseline gate's speed rule, the same on every device: saved runs are the unit, and a run's own samples
decide only where the saved runs showed that they predict the next run.

A baseline keeps, for each saved run, every setting's median and the 95% interval of that median from the run's own
samples (SavedRun, written by vitcnn/gate/baseline.py at each save). For each setting the rule takes the evidence its
saved runs justify, and its row says which:
- `samples`: two or more saved runs whose medians lie inside each other's intervals and within half the tolerance:
  their samples predicted each other (a GPU-bound setting on a dedicated GPU reproduces to ~0.1%), so the new run's
  samples are judged against the baseline's (speed.mann_whitney), the tolerance never tighter than their spread;
- `runs`: MIN_RUNS or more saved runs that disagree beyond their samples: each run is one draw. On log scale a run's
  median of a setting is the setting's mean, plus a shift the run shares with all its settings (the machine's regime
  of that process: placement, clocks, a neighbour), plus a residual. A setting is judged by its residual against the
  residuals' spread pooled over every setting (many degrees of freedom, where one setting alone has n - 1); the new
  run's shared shift against the saved runs' shifts (n - 1 degrees of freedom). On a CPU, where every setting runs
  at the core's speed, the rule may work in **machine time**: each setting records how long a fixed pure-Python
  loop took around its timing (vitcnn/measure/host.py, speed probe), and its median divided by that probe does not
  move with the core's speed. A probe is two instants around a second of timing, so it can also add noise: machine
  time is used only where the saved runs spread less in it (RunEffects.spread, at most MACHINE_TIME_GAIN of the
  clock's; docs/results.md, "The machine speed probe"), and the row says which;
- `far`: fewer saved runs than either needs: only a change beyond speed.FAR (2x) fails.
A shift shared by (nearly) every setting of the new run is named in the notes as a possible machine regime, with
how far the machine's own speed moved when the runs recorded it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from vitcnn.gate.metrics import SPEED, Finding, GateOptions
from vitcnn.gate.speed import FAR, Pair, SpeedFinding, far_beyond, history_speed, mann_whitney, run_to_run_spread
from vitcnn.result import Result

if TYPE_CHECKING:
    from vitcnn.runfile import Run

MIN_RUNS = 3  # saved runs of a setting before the `runs` rule judges it
INTERVAL = 0.95  # coverage of a saved median's interval (distribution-free, from the order statistics)
POWER = 0.80  # the detectable slowdown of a row: the one its rule would flag this often
SAME_RESOLVES = 2.0  # a `same` must have been able to see a slowdown of this many tolerances (80% power)
REGIME_SHARE = 0.8  # a new run whose settings moved this share in one direction, beyond the tolerance: a regime?
MACHINE_TIME_GAIN = 0.9  # machine time must cut the saved runs' spread to this share of the clock's
RULE_NAMES = {"samples": "within-run samples (the saved runs agree within their own intervals)",
              "runs": "saved runs as units", "far": f"only a change beyond {FAR:g}x (too few saved runs)"}


@dataclass(frozen=True)
class SavedMedian:
    """One setting in one saved run: its median, the interval of that median from the run's samples (None for
    saves recorded before intervals were), its sample count and why it was contended (None: quiet)."""

    median_s: float
    low_s: float | None = None
    high_s: float | None = None
    samples: int = 0
    contended: str | None = None
    probe_ns: float | None = None  # the machine's speed probe around this setting's timing (median, ns)


@dataclass(frozen=True)
class SavedRun:
    """One saved run of a baseline: when, at which commit, its conditions (the fingerprint's GPU conditions, the
    host state of its settings) and each ok setting's SavedMedian."""

    saved_at: str | None
    commit: str | None
    medians: dict[str, SavedMedian]

    @property
    def quiet(self) -> dict[str, SavedMedian]:
        """The medians timed without a busy neighbour: a contended one says nothing of a quiet machine's spread."""
        return {i: m for i, m in self.medians.items() if not m.contended}


def median_interval(samples: Sequence[float]) -> tuple[float, float] | None:
    """The INTERVAL confidence interval of the median from order statistics (no distribution assumed; None with
    fewer than 2 samples). Samples of one run are correlated, so it is too narrow if anything, which makes the
    `samples` rule less often chosen, never more."""
    n = len(samples)
    if n < 2:
        return None
    ordered = sorted(samples)
    below = int(stats.binom.ppf((1 - INTERVAL) / 2, n, 0.5))  # order statistics outside the interval on each side
    return ordered[max(below - 1, 0)], ordered[min(n - below, n - 1)]


def record(run: Run) -> dict:
    """The JSON of `run` as one saved run (what baseline.py appends to `vitcnn.saved_runs` at each save)."""
    medians = {}
    for setting_id, result in run.results.items():
        if result.status != "ok" or not result.median_s:
            continue
        interval = median_interval(result.samples)
        medians[setting_id] = {"median_s": result.median_s, "low_s": interval and interval[0],
                               "high_s": interval and interval[1], "samples": len(result.samples),
                               "contended": result.get("contended"), "probe_ns": probe_ns(result)}
    return {"saved_at": run.raw.get("datetime"), "commit": run.code.get("commit"), "medians": medians}


def probe_ns(result: Result) -> float | None:
    """The machine's speed probe around a setting's timed blocks (median ns; None for runs before it existed)."""
    return (result.get("host_state") or {}).get("speed_probe_ns_median")


def machine_level(probes: Sequence[float | None]) -> float | None:
    """A run's machine speed as one number: the median log probe over its settings, None unless at least half
    of them recorded one (a run is compared only with runs measured the same way)."""
    found = [math.log(p) for p in probes if p]
    return float(np.median(found)) if found and 2 * len(found) >= len(probes) else None


def machine_move(saved_levels: Sequence[float | None], new: Sequence[Result]) -> float | None:
    """How much slower (log) the new run's machine was than the saved runs' on average, by the speed probe; None
    where a saved run or the new one did not record it."""
    level = machine_level([probe_ns(r) for r in new])
    if level is None or not saved_levels or None in saved_levels:
        return None
    return level - float(np.mean(saved_levels))


def log_time(median_s: float, probe: float | None, machine_time: bool) -> float:
    """log of a median, in machine time (divided by its speed probe) where asked."""
    return math.log(median_s) - (math.log(probe) if machine_time else 0.0)


def clock_change(saved: Sequence[SavedMedian], new_median_s: float) -> float:
    """log(new median / the saved medians' geometric mean): the change by the clock alone."""
    return math.log(new_median_s) - float(np.mean(np.log([s.median_s for s in saved])))


def saved_runs(run: Run) -> list[SavedRun]:
    """The saved runs a baseline file records, oldest first (empty for a plain run file or an older baseline);
    ValueError when the section is malformed."""
    try:
        return [SavedRun(entry.get("saved_at"), entry.get("commit"),
                         {str(i): SavedMedian(**m) for i, m in entry["medians"].items()})
                for entry in run.raw["vitcnn"].get("saved_runs", [])]
    except (AttributeError, KeyError, TypeError) as exc:
        raise ValueError(f"{run.path}: malformed saved_runs ({exc!r})") from exc


def _saved_of(base: Run, runs: list[SavedRun], setting: Result) -> list[SavedMedian]:
    """What the baseline knows of one setting's run-to-run behaviour: its saved runs timed quietly (a contended
    save says nothing of a quiet machine's spread), else the medians an older baseline kept (no intervals), else
    the base run itself as one save."""
    found = [r.quiet[setting.id] for r in runs if setting.id in r.quiet]
    if found:
        return found
    if base.median_history.get(setting.id):
        return [SavedMedian(m) for m in base.median_history[setting.id]]
    interval = median_interval(setting.samples)
    return [SavedMedian(setting.median_s, *(interval or (None, None)), len(setting.samples))] if setting.median_s \
        else []


def agree(saved: Sequence[SavedMedian], tolerance: float) -> bool:
    """Whether the saved runs predicted each other from their own samples: every saved median inside every other
    saved run's interval, and all of them within half the tolerance of each other (intervals wide enough to hold
    anything prove nothing)."""
    if len(saved) < 2 or any(s.low_s is None or s.high_s is None for s in saved):
        return False
    medians = [s.median_s for s in saved]
    inside = all(s.low_s <= m <= s.high_s for s in saved for m in medians)
    return inside and run_to_run_spread(medians) <= tolerance / 2


def evidence(saved: Sequence[SavedMedian], tolerance: float) -> str:
    """Which rule the saved runs justify for a setting (see the module docstring): `samples`, `runs` or `far`."""
    if agree(saved, tolerance):
        return "samples"
    return "runs" if len(saved) >= MIN_RUNS else "far"


@dataclass(frozen=True)
class RunEffects:
    """The two-way fit of the saved runs (log medians = setting mean + run shift + residual) over the settings
    judged by the `runs` rule."""

    means: dict[str, float]  # each setting's mean log median
    counts: dict[str, int]  # saved runs per setting
    shifts: np.ndarray  # each saved run's shared shift (log), centred
    residual_sd: float
    residual_df: int

    @property
    def spread(self) -> float:
        """How far (sd, log) one setting of one more run falls from its mean: its residual and its run's shift."""
        return math.sqrt(self.residual_sd ** 2 + float(np.var(self.shifts, ddof=1)))

    @classmethod
    def fit(cls, runs: list[SavedRun], ids: Sequence[str], machine_time: bool = False) -> RunEffects | None:
        """The fit (of log machine time where `machine_time`), or None where it cannot separate shifts from
        residuals (fewer than 3 settings or no residual degrees of freedom)."""
        quiet = [r.quiet for r in runs]
        logs = np.array([[log_time(q[i].median_s, q[i].probe_ns, machine_time) if i in q else np.nan for i in ids]
                         for q in quiet]).reshape(len(runs), len(ids))
        logs = logs[np.isfinite(logs).any(axis=1)]
        cells = int(np.isfinite(logs).sum())
        df = cells - len(ids) - len(logs) + 1
        if len(ids) < 3 or len(logs) < 2 or df < 1:
            return None
        means = np.nanmean(logs, axis=0)
        shifts = np.nanmedian(logs - means, axis=1)  # a median: one setting's regression does not move its run
        shifts -= shifts.mean()
        means = np.nanmean(logs - shifts[:, None], axis=0)
        residuals = logs - means - shifts[:, None]
        return cls(dict(zip(ids, means.tolist())), dict(zip(ids, np.isfinite(logs).sum(axis=0).tolist())), shifts,
                   math.sqrt(float(np.nansum(residuals ** 2)) / df), df)


def _detectable(critical: float, scale: float, df: float, tolerance: float) -> float:
    """The smallest slowdown flagged with probability POWER by a bound `critical` (log) on a `scale` with `df`."""
    return max(tolerance, math.expm1(critical + float(stats.t.ppf(POWER, df)) * scale))


class StoredRuns:
    """The stored baseline's speed rule (see the module docstring); `notes` says which rules decided and names a
    shift shared by the whole new run."""

    primary = SPEED

    def __init__(self, base: Run) -> None:
        self.base, self.runs = base, saved_runs(base)
        self.notes: list[str] = []
        # on a GPU a setting may run at the GPU's speed, not the host's: its probe is reported, never divided out
        self.follows_host = base.fingerprint.get("device") == "cpu"

    def findings(self, pairs: Sequence[Pair], options: GateOptions) -> dict[int, SpeedFinding]:
        untimed = [(i, base, new) for i, base, new in pairs if not (base.median_s and new.median_s)]
        found = {i: SpeedFinding(mann_whitney(base, new, options)) for i, base, new in untimed}  # says why not
        pairs = [pair for pair in pairs if pair not in untimed]
        saved = {i: _saved_of(self.base, self.runs, base) for i, base, _ in pairs}
        rule = {i: evidence(saved[i], options.tolerance) for i, _, _ in pairs}
        for i, base, new in pairs:
            if rule[i] == "samples":
                found[i] = self._by_samples(base, new, saved[i], options)
            elif rule[i] == "far":
                found[i] = self._far_only(base, new, saved[i], options)
        by_runs = [(i, base, new) for i, base, new in pairs if rule[i] == "runs"]
        found.update(self._by_runs(by_runs, saved, options))
        ids = [base.id for _, base, _ in pairs]
        levels = [machine_level([r.quiet[i].probe_ns for i in ids if i in r.quiet]) for r in self.runs]
        moved = machine_move(levels, [n for _, _, n in pairs])
        self.notes = _rules_note(rule) + _regime_note(pairs, saved, options, moved)
        return {i: _resolved(f, options) for i, f in found.items()}

    @staticmethod
    def _by_samples(base: Result, new: Result, saved: list[SavedMedian], options: GateOptions) -> SpeedFinding:
        spread = run_to_run_spread([s.median_s for s in saved])
        finding = mann_whitney(base, new, options, spread)
        why = f"{RULE_NAMES['samples'].split(' (')[0]}: its {len(saved)} saved runs agree within ±{spread:.1%}"
        return SpeedFinding(finding._replace(detail=f"{finding.detail}; {why}"),
                            detectable=max(options.tolerance, spread))

    @staticmethod
    def _far_only(base: Result, new: Result, saved: list[SavedMedian], options: GateOptions) -> SpeedFinding:
        far = far_beyond([s.median_s for s in saved], new.median_s, options)
        factor = max(FAR, 1 + options.tolerance)
        if far is not None:
            return SpeedFinding(far, detectable=factor - 1)
        delta = clock_change(saved, new.median_s)
        ratio, change = math.exp(delta), f"{math.expm1(delta) * 100:+.1f}%"
        label = "same" if abs(delta) <= math.log1p(options.tolerance) else "inconclusive"
        why = (f"{len(saved)} saved run{'s' if len(saved) != 1 else ''}: speed is judged only beyond {factor:g}x "
               f"until {MIN_RUNS} are saved")
        return SpeedFinding(Finding(label, f"{change}; {why}", ratio), detectable=factor - 1)

    def _by_runs(self, pairs: Sequence[Pair], saved: dict[int, list[SavedMedian]], options: GateOptions
                 ) -> dict[int, SpeedFinding]:
        ids = [base.id for _, base, _ in pairs]
        effects = clock = RunEffects.fit(self.runs, ids)
        probed = self.follows_host and bool(pairs) and all(
            probe_ns(new) and all(s.probe_ns for s in saved[i]) for i, _, new in pairs)
        machine = RunEffects.fit(self.runs, ids, machine_time=True) if probed and clock is not None else None
        machine_time = machine is not None and machine.spread <= MACHINE_TIME_GAIN * clock.spread
        if machine_time:
            effects = machine
        if effects is None:  # too few settings (or only an older baseline's medians): each setting alone
            return {i: self._one_setting(saved[i], new, options, len(pairs)) for i, _, new in pairs}
        tolerance = math.log1p(options.tolerance)
        change = {i: log_time(new.median_s, probe_ns(new), machine_time) - effects.means[base.id]
                  for i, base, new in pairs}
        shift = float(np.median(list(change.values())))
        n_runs = len(effects.shifts)
        shift_scale = float(np.std(effects.shifts, ddof=1)) * math.sqrt(1 + 1 / n_runs)
        shift_bound = float(stats.t.ppf(1 - options.alpha / 2, n_runs - 1)) * shift_scale
        shift_moved = abs(shift) > max(shift_bound, tolerance)
        own_critical_t = float(stats.t.ppf(1 - options.alpha / (2 * len(pairs)), effects.residual_df))
        found = {}
        for i, base, new in pairs:
            n = effects.counts[base.id]
            scale = effects.residual_sd * math.sqrt(1 + 1 / n + math.pi / (2 * len(pairs)))
            own = change[i] - shift
            own_bound = own_critical_t * scale
            own_moved = abs(own) > max(own_bound, tolerance)
            tested = (own if own_moved else 0.0) + (shift if shift_moved else 0.0)
            ratio = math.exp(change[i])
            p = float(stats.t.sf(abs(own) / scale, effects.residual_df)) if scale > 0 else float(own == 0)
            units = (f"in machine time (each median divided by its speed probe: the saved runs spread "
                     f"{math.expm1(machine.spread):.1%} in it, {math.expm1(clock.spread):.1%} by the clock; "
                     f"{math.expm1(clock_change(saved[i], new.median_s)) * 100:+.1f}% by the clock)"
                     if machine_time else "as units")
            detail = (f"{(ratio - 1) * 100:+.1f}% against the mean of {n} saved runs, {units}: "
                      f"{math.expm1(own) * 100:+.1f}% of its own beyond the run's shared shift "
                      f"{math.expm1(shift) * 100:+.1f}% (own allowed ±{math.expm1(max(own_bound, tolerance)):.0%}: "
                      f"residual spread {math.expm1(effects.residual_sd):.1%}, {effects.residual_df} df; shared allowed "
                      f"±{math.expm1(max(shift_bound, tolerance)):.0%}: the saved runs' shifts, {n_runs - 1} df)")
            far = far_beyond([s.median_s for s in saved[i]], new.median_s, options)
            if far is not None:
                finding = far._replace(detail=f"{far.detail}; {detail}", p_value=p)
            elif abs(tested) > tolerance:
                finding = Finding("slower" if tested > 0 else "faster", detail, ratio, p)
            else:
                finding = Finding("same", detail, ratio, p)
            found[i] = SpeedFinding(finding, detectable=_detectable(own_bound, scale, effects.residual_df,
                                                                    options.tolerance))
        return found

    @staticmethod
    def _one_setting(saved: list[SavedMedian], new: Result, options: GateOptions, tests: int) -> SpeedFinding:
        """A setting judged from its own saved medians alone (t with n - 1 degrees of freedom), or beyond FAR."""
        medians = [s.median_s for s in saved]
        decided = history_speed(medians, new.median_s, options, tests)
        far = far_beyond(medians, new.median_s, options)
        scale = float(np.std(np.log(medians), ddof=1)) * math.sqrt(1 + 1 / len(medians))
        critical = float(stats.t.ppf(1 - options.alpha / (2 * max(tests, 1)), len(medians) - 1)) * scale
        detectable = min(_detectable(critical, scale, len(medians) - 1, options.tolerance),
                         max(FAR, 1 + options.tolerance) - 1)
        return SpeedFinding(far if far and decided.label == "same" else decided, detectable=detectable)


def _resolved(found: SpeedFinding, options: GateOptions) -> SpeedFinding:
    """`same` only where the rule could have seen a slowdown of SAME_RESOLVES x the tolerance (10% by default);
    otherwise `inconclusive`, saying what it could have seen, as `vitcnn ab` does."""
    needed = SAME_RESOLVES * options.tolerance
    if found.found.label != "same" or found.detectable is None or found.detectable <= needed:
        return found
    why = f"could only have seen a slowdown of {found.detectable:.0%} (a `same` needs {needed:.0%})"
    return found._replace(found=found.found._replace(label="inconclusive", detail=f"{found.found.detail}; {why}"))


def _rules_note(rule: dict[int, str]) -> list[str]:
    """Which rules decided how many settings' speed."""
    counts = {name: sum(1 for r in rule.values() if r == name) for name in RULE_NAMES}
    parts = [f"{n} by {RULE_NAMES[name]}" for name, n in counts.items() if n]
    if not parts:
        return []
    advice = (f"; save at least {MIN_RUNS} runs (`python -m vitcnn baseline save RUN.json ...`) to judge smaller "
              f"changes, or compare with `python -m vitcnn ab`" if counts["far"] else "")
    return [f"speed decided {', '.join(parts)} (docs/gating.md){advice}"]


def _regime_note(pairs: Sequence[Pair], saved: dict[int, list[SavedMedian]], options: GateOptions,
                 machine: float | None = None) -> list[str]:
    """Names a shift shared by (nearly) every setting of the new run: more often the machine than the code; and
    how far the machine's own speed moved (`machine`, log; None where the runs did not record it)."""
    changes = [clock_change(saved[i], new.median_s) for i, _, new in pairs if saved[i]]
    if len(changes) < 3:
        return []
    shift = float(np.median(changes))
    same_way = sum(1 for c in changes if c * shift > 0) / len(changes)
    if abs(shift) <= math.log1p(options.tolerance) or same_way < REGIME_SHARE:
        return []
    probe = ("" if machine is None else
             f" The machine's own speed probe (a fixed pure-Python loop) moved {math.expm1(machine) * 100:+.1f}% "
             f"against the saved runs'.")
    return [f"POSSIBLE MACHINE REGIME: the whole run moved {math.expm1(shift) * 100:+.1f}% (median over "
            f"{len(changes)} settings, {same_way:.0%} of them this way).{probe} A shift shared by every setting is "
            f"often the machine (a neighbour, clocks, the cores this process got) rather than the code: confirm a "
            f"`slower` with `python -m vitcnn ab`, which interleaves both sides on one machine."]
