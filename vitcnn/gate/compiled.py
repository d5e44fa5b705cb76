"""Gate rules for what torch.compile did, per setting and across a session.

- `graph-breaks-up` / `recompiles-up` (per setting): Dynamo broke the graph or recompiled more often than in the
  base. Deterministic for a model and a torch version: exact on any machine, a shared CPU runner included.
- `speedup-down` (per setting): the speedup over eager (twin.py: eager and compiled blocks paired in one process)
  fell by more than `speedup_tolerance` AND a one-sided Welch t-test of the two runs' pair log-ratios is
  significant at alpha / (settings with a speedup on both sides) (Bonferroni: the chance of any false
  `speedup-down` in a session is at most alpha while the pairs behave as independent draws). Both twins share a
  process and the machine's drift, so a slower VM moves compiled and eager together and leaves the ratio; but a
  run can still shift one setting's ratio as a whole (two unchanged smoke runs on the 2-core VM: up to 7%, Welch
  p down to 0.001), which the pairs' spread does not contain: the tolerance (20%) is what absorbs it.
- `compile-slower` (across the session): cold compile times (empty caches, compiling.compile_extras) paired by
  setting; the settings are the repetitions. The session's compiles are slower when a one-sided one-sample t-test
  of log(new / base) over the settings is significant at alpha AND their geometric mean grew by more than
  `compile_tolerance`; then each setting that grew by more than the tolerance is labelled. A single setting's
  cold compile is one draw per run, so one setting alone is never labelled: a compile regression confined to one
  model is seen only beyond the session's own noise. Fewer than MIN_SETTINGS paired settings: not gated.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from scipy import stats

from vitcnn.gate.metrics import COMPILE, GRAPH_BREAKS, SPEEDUP, Finding, GateOptions, Metric
from vitcnn.result import Result

MIN_SETTINGS = 3  # paired cold compile times before `compile-slower` is decided


def count_rule(metric: Metric, base: Result, new: Result, options: GateOptions) -> Finding:
    """Graph breaks or recompiles (`metric`) that went up, the first new graph-break reason in the detail; a count
    recorded on one side only (an eager setting, an older run) decides nothing."""
    b, n = base.get(metric.field), new.get(metric.field)
    if b is None or n is None or n <= b:
        return Finding(None, "")
    reasons = new.get("graph_break_reasons") if metric is GRAPH_BREAKS else None
    return Finding(metric.labels[0], f"{metric.noun} {b} -> {n}" + (f" (first: {reasons[0]})" if reasons else ""))


def _log_ratios(result: Result) -> list[float] | None:
    logs = result.get("speedup_log_ratios")
    return list(logs) if logs and len(logs) >= 2 else None


def speedup_findings(pairs: Iterable[tuple[str, Result, Result]], alpha: float, tolerance: float
                     ) -> dict[str, Finding]:
    """`speedup-down` per setting id, for the (id, base, new) triples that both have pair log-ratios."""
    usable = [(i, b, n) for i, base, new in pairs
              if (b := _log_ratios(base)) is not None and (n := _log_ratios(new)) is not None]
    level = alpha / max(len(usable), 1)
    found = {}
    for i, b, n in usable:
        change = float(np.mean(n) - np.mean(b))  # log of new speedup / base speedup
        p = float(stats.ttest_ind(n, b, equal_var=False, alternative="less").pvalue)
        if math.isnan(p):  # identical constant ratios on both sides: no spread to test against
            p = 0.0 if change < 0 else 1.0
        if change < -math.log1p(tolerance) and p < level:
            found[i] = Finding(SPEEDUP.labels[0], f"{SPEEDUP.noun} {math.exp(np.mean(b)):.2f}x -> "
                                               f"{math.exp(np.mean(n)):.2f}x (p={p:.2g} < {level:.2g})")
    return found


def compile_findings(pairs: Iterable[tuple[str, Result, Result]], alpha: float, tolerance: float
                     ) -> tuple[dict[str, Finding], str | None]:
    """`compile-slower` per setting id, and a note on the session's cold compile times (None when not gated)."""
    logs = {i: math.log(n / b) for i, base, new in pairs
            if (b := base.get("compile_cold_s")) and (n := new.get("compile_cold_s")) and b > 0 and n > 0}
    if len(logs) < MIN_SETTINGS:
        return {}, None
    values = np.fromiter(logs.values(), dtype=float)
    mean = float(values.mean())
    p = float(stats.ttest_1samp(values, 0.0, alternative="greater").pvalue) if values.std() > 0 else (
        0.0 if mean > 0 else 1.0)
    slower = p < alpha and mean > math.log1p(tolerance)
    note = (f"cold compile time: {math.expm1(mean):+.1%} (geometric mean over {len(logs)} settings, p={p:.2g}); "
            f"`compile-slower` needs p < {alpha:g} and more than {tolerance:.0%}")
    if not slower:
        return {}, note
    return {i: Finding(COMPILE.labels[0], f"cold compile {math.expm1(x):+.0%}; session {math.expm1(mean):+.0%}")
            for i, x in logs.items() if x > math.log1p(tolerance)}, note


def speedup_rule(pairs: Iterable[tuple[str, Result, Result]], options: GateOptions
                 ) -> tuple[dict[str, Finding], str | None]:
    """The gate's rule: speedup_findings at the options' alpha and tolerance (no session note)."""
    return speedup_findings(pairs, options.alpha, options.speedup_tolerance), None


def compile_rule(pairs: Iterable[tuple[str, Result, Result]], options: GateOptions
                 ) -> tuple[dict[str, Finding], str | None]:
    """The gate's rule: compile_findings at the options' alpha and tolerance."""
    return compile_findings(pairs, options.alpha, options.compile_tolerance)
