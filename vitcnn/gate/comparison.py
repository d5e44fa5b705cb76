"""What a comparison of two runs says: one SettingVerdict per setting, and the Comparison that holds them with the
notes the tables print (vitcnn/gate/verdicts.py renders them; vitcnn/gate/rules.py decides them)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from vitcnn.gate.metrics import LABELS, GateOptions


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
    condition_changes: dict[str, tuple] = field(default_factory=dict)  # run/GPU conditions that differ (warned)
    notes: list[str] = field(default_factory=list)  # what the tables print under the summary line
    base_commit: str | None = None  # the git commit the base side measured, where it recorded one

    @property
    def cross_machine(self) -> bool:
        return bool(self.differences)

    @property
    def worst_detectable(self) -> float | None:
        """The largest of the settings' detectable slowdowns (None where no rule gave one: counts, statuses)."""
        return max((v.detectable for v in self.verdicts if v.detectable is not None), default=None)

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
            text += f"; worst detectable slowdown {percent(self.worst_detectable)}"
        if self.cross_machine:
            text += " [CROSS-MACHINE: different fingerprints, numbers not comparable]"
        return text


def percent(fraction: float) -> str:
    return "unbounded" if math.isinf(fraction) else f"{fraction:.1%}"
