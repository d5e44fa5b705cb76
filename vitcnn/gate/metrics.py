"""The metrics the gate judges, one entry each, and everything derived from that table.

An entry says what is compared (the run file's field), how it is named in tables and messages, which labels it can
give (and which of them fail a gate), its tolerances (with their pytest and command-line options and defaults),
whether it is decided per setting or across a session, and the rule that decides it (a function named by its
module, imported when first used, so that this table, and the options built from it, load without numpy or scipy:
pytest imports them before it parses arguments). Derived from it: the label sets, GateOptions, the options of
`pytest --vitcnn-gate` and `vitcnn compare`, the verdict tables' metric columns, the nouns of the terminal table and
`vitcnn check`, and the series the history tracks.

Adding a metric: an entry here (and, if it has a tolerance, its GateOptions field), its rule (a module of this
package), and the measuring code that writes its field. A label of an existing metric: its entry and its rule.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from vitcnn.table import MIB

if TYPE_CHECKING:
    from vitcnn.result import Result


class Finding(NamedTuple):
    """What one rule found for one setting: a label (None: nothing to report) and the numbers behind it."""

    label: str | None
    detail: str
    ratio: float | None = None
    p_value: float | None = None


@dataclass(frozen=True)
class Parameter:
    """A threshold of the gate: its GateOptions field, default, the option suffix (`--vitcnn-<option>` in pytest,
    `--<option>` in `vitcnn compare`; None: no option), its help, the unit its option is given in (`scale` option
    units per field unit: MiB for a byte tolerance), and whether pytest offers it."""

    field: str
    default: float
    option: str | None
    help: str
    scale: float = 1.0
    in_pytest: bool = True
    check: Callable[[float], bool] = lambda value: value >= 0 and math.isfinite(value)
    rule_text: str = "a finite number >= 0"


@dataclass(frozen=True)
class HistorySeries:
    """A number the history tracks over commits (vitcnn/history/series.py); all of them are worse when higher.

    What may confirm one of its change points (vitcnn/history/confirm.py): a deterministic series (a count, a
    byte peak) moves with the code only, so its change point is evidence by itself; a timed one also moves with the
    machine, and is confirmed by the series named `confirmed_by` (of the same machine and setting) stepping too, or
    by a `vitcnn ab` of its two commits labelling the setting `ab_label`. A timed series with neither has nothing
    that can confirm it."""

    name: str
    label: str
    unit: str
    scale: float  # display value = raw value * scale
    read: Callable[[Result], float | None]
    tolerance: float  # default relative change below which a change point is not a regression
    deterministic: bool = False
    confirmed_by: str | None = None
    ab_label: str | None = None


@dataclass(frozen=True)
class Metric:
    """One gated metric (see the module docstring)."""

    name: str
    field: str  # the Result property or run-file info key compared
    noun: str
    labels: tuple[str, ...]
    regressions: tuple[str, ...]
    scope: str  # "setting": each setting alone; "session": across the settings of a comparison; "speed": the first
    # label of a setting, decided by the comparison's speed rule (vitcnn/gate/speed.py)
    rule: str  # "module:function" in vitcnn.gate (for speed: the stored gate's rule)
    parameters: tuple[Parameter, ...] = ()
    history: tuple[HistorySeries, ...] = ()
    column: str | None = None  # the verdict tables' column of its base and new value (vitcnn/gate/verdicts.py)

    def decide(self) -> Callable:
        """The rule's function (imported on first use)."""
        module, function = self.rule.split(":")
        return getattr(importlib.import_module(f"vitcnn.gate.{module}"), function)


def _compile_time(result: Result, verdict: str) -> float | None:
    """The timed model's compile time when its cache verdict is `verdict` (a partial hit belongs to neither)."""
    return result.get("compile_time_s") if result.get("compile_cache") == verdict else None


def _instructions(result: Result) -> float | None:
    """Instructions per call where the run counted them (`--vitcnn-metric instructions`); 0 is not a count."""
    return result.get("instructions_per_call") or None


# The instruction count's tolerance, from A/A spread (docs/instructions.md): the gate's and the history's.
_INSTRUCTIONS_TOLERANCE = Parameter(
    "instructions_tolerance", 0.01, "instructions-tolerance",
    "allowed relative growth of a call's instruction count, where both runs counted them")
_SPEED_LABELS = ("slower", "faster", "inconclusive", "same")

SPEED = Metric(
    "speed", "median_s", "median time", _SPEED_LABELS, _SPEED_LABELS[:1], "speed",
    "stored:StoredRuns", (
        Parameter("tolerance", 0.05, "tolerance", "allowed slowdown, new/base median - 1"),
        Parameter("alpha", 0.01, "alpha", "significance level of the one-sided speed test (Mann-Whitney U on one "
                                          "run's samples; a t prediction bound on saved runs)",
                  check=lambda value: 0 < value < 1, rule_text="in (0, 1)")),
    (HistorySeries("latency", "median latency", "ms", 1e3, lambda r: r.median_s, 0.10,
                   confirmed_by="instructions", ab_label=_SPEED_LABELS[0]),))
MEMORY = Metric(
    "memory", "activation_peak_bytes", "activation memory", ("memory-up", "memory-down"), ("memory-up",), "setting",
    "memory:rule", (
        Parameter("memory_rel_tolerance", 0.01, "memory-tolerance",
                  "allowed relative activation-memory growth (and at least the absolute tolerance)"),
        Parameter("memory_abs_tolerance", MIB, "memory-abs-mib", "allowed absolute activation-memory growth in MiB",
                  scale=1 / MIB, in_pytest=False)),
    (HistorySeries("activation_memory", "activation memory", "MiB", 1 / MIB, lambda r: r.activation_peak_bytes,
                   0.05, deterministic=True),), column="act. MiB")
INSTRUCTIONS = Metric(
    "instructions", "instructions_per_call", "instructions per call", ("instructions-up", "instructions-down"),
    ("instructions-up",), "setting", "instructions:rule", (_INSTRUCTIONS_TOLERANCE,),
    (HistorySeries("instructions", "instructions per call", "Minstr", 1e-6, _instructions,
                   _INSTRUCTIONS_TOLERANCE.default, deterministic=True),),
    column="Minstr/call")
FLOPS = Metric(
    "flops", "flops", "FLOPs per call", ("flops-up", "flops-down"), ("flops-up",), "setting", "flops:rule",
    (Parameter("flops_tolerance", 0.001, "flops-tolerance",
               "allowed relative growth of a call's FLOP count (torch.utils.flop_counter: matmuls, convolutions, "
               "attention)"),))
GRAPH_BREAKS = Metric("graph_breaks", "graph_breaks", "graph breaks", ("graph-breaks-up",), ("graph-breaks-up",),
                      "setting", "compiled:count_rule")
RECOMPILES = Metric("recompiles", "recompiles", "recompiles", ("recompiles-up",), ("recompiles-up",), "setting",
                    "compiled:count_rule")
SPEEDUP = Metric(
    "speedup", "speedup_log_ratios", "speedup over eager", ("speedup-down",), ("speedup-down",), "session",
    "compiled:speedup_rule",
    (Parameter("speedup_tolerance", 0.20, None, "speedup over eager may fall this much (new/base >= 1/1.20)"),))
COMPILE = Metric(
    "compile", "compile_cold_s", "cold compile time", ("compile-slower",), ("compile-slower",), "session",
    "compiled:compile_rule",
    (Parameter("compile_tolerance", 0.20, None, "cold compile time may grow this much (geometric mean)"),),
    # A compile served from the cache and a cold one are different quantities: two series, by the cache verdict.
    (HistorySeries("compile_time", "compile time (cold cache)", "s", 1.0, lambda r: _compile_time(r, "miss"), 0.25),
     HistorySeries("compile_time_warm", "compile time (warm cache)", "s", 1.0, lambda r: _compile_time(r, "hit"),
                   0.25)))

GATED: dict[str, Metric] = {m.name: m for m in (SPEED, MEMORY, INSTRUCTIONS, FLOPS, GRAPH_BREAKS, RECOMPILES,
                                                SPEEDUP, COMPILE)}
PARAMETERS: dict[str, Parameter] = {p.field: p for m in GATED.values() for p in m.parameters}

# Labels decided by presence and status alone: a setting that now fails, works again, vanished or is new.
STATUS_LABELS = ("now-oom", "now-error", "fixed", "missing", "new")
SPEED_LABELS = SPEED.labels
LABELS = (*(label for m in GATED.values() for label in m.labels), *STATUS_LABELS)
ALWAYS_REGRESSIONS = frozenset({*(label for m in GATED.values() for label in m.regressions), "now-oom", "now-error"})
REGRESSIONS = ALWAYS_REGRESSIONS | {"missing"}
REGRESSION_LABELS = tuple(label for label in LABELS if label in REGRESSIONS)  # in table order, for help texts


@dataclass(frozen=True)
class GateOptions:
    """Thresholds of the gate (each one a Parameter of GATED, whose default it takes) and two switches:
    `allow_missing` (settings absent from the new run are no regression) and `allow_cross_machine` (compare runs
    whose identity is incomplete or differs; the verdicts are marked)."""

    tolerance: float = SPEED.parameters[0].default
    alpha: float = SPEED.parameters[1].default
    memory_rel_tolerance: float = MEMORY.parameters[0].default
    memory_abs_tolerance: float = MEMORY.parameters[1].default
    speedup_tolerance: float = SPEEDUP.parameters[0].default
    compile_tolerance: float = COMPILE.parameters[0].default
    instructions_tolerance: float = INSTRUCTIONS.parameters[0].default
    flops_tolerance: float = FLOPS.parameters[0].default
    allow_missing: bool = False
    allow_cross_machine: bool = False

    def __post_init__(self) -> None:
        for name, parameter in PARAMETERS.items():
            value = getattr(self, name)
            if not parameter.check(value):
                raise ValueError(f"{name} must be {parameter.rule_text}, got {value}")

    @property
    def regression_labels(self) -> frozenset[str]:
        return ALWAYS_REGRESSIONS if self.allow_missing else REGRESSIONS

    def is_regression(self, labels: tuple[str, ...]) -> bool:
        """Whether any of a setting's labels is a regression under these options."""
        return any(label in self.regression_labels for label in labels)


SWITCHES = {"allow_missing": ("allow-missing", "settings absent from the new run are not regressions"),
            "allow_cross_machine": ("allow-cross-machine", "judge speed against a run whose identity is incomplete "
                                                           "or differs (numbers may not be comparable); its "
                                                           "verdicts are marked cross-machine")}


def _default_text(parameter: Parameter) -> str:
    return f"{parameter.default * parameter.scale:g}"


def _offered(pytest: bool) -> list[Parameter]:
    """The parameters that have an option in pytest (`pytest`) or on the command line."""
    return [p for p in PARAMETERS.values() if p.option is not None and (p.in_pytest or not pytest)]


def add_gate_options(addoption: Callable, prefix: str, pytest: bool) -> None:
    """Register the gate's parameters and switches with `addoption` (pytest's group.addoption or argparse's
    add_argument), named `<prefix><option>`, as pytest-benchmark registers its options. In pytest an option left
    out is None (GateOptions' default applies: see options_from); the command line shows and takes the default."""
    for parameter in _offered(pytest):
        default = None if pytest else float(_default_text(parameter))
        addoption(f"{prefix}{parameter.option}", type=float, default=default,
                  help=f"gate: {parameter.help} (default: {_default_text(parameter)})")
    for option, help_text in SWITCHES.values():
        addoption(f"{prefix}{option}", action="store_true", help=f"gate: {help_text}")


def options_from(getoption: Callable[[str], object], prefix: str, pytest: bool) -> GateOptions:
    """GateOptions from the options add_gate_options registered (`getoption("<prefix><option>")`); a parameter
    not given keeps its default. Raises ValueError for a value out of range."""
    given: dict = {name: bool(getoption(f"{prefix}{option}")) for name, (option, _) in SWITCHES.items()}
    for parameter in _offered(pytest):
        value = getoption(f"{prefix}{parameter.option}")
        if value is not None:
            given[parameter.field] = value / parameter.scale
    return GateOptions(**given)


def tracked_series() -> dict[str, HistorySeries]:
    """Every series the history tracks, by name, in the order of GATED."""
    return {series.name: series for m in GATED.values() for series in m.history}
