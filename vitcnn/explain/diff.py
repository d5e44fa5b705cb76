"""A against B, op by op: what an explanation says under a `slower` (or `instructions-up`) row.

Pure and light (no torch): it works on the dictionaries a worker's "profile" reply (ops.profile_ops) or a callgrind
count (functions.function_costs) holds, so the driver, the JSON output and the tests share one representation.
Everything is per model call: a side's totals divided by the calls it profiled or counted.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field

from vitcnn import table
from vitcnn.settings import AXES, Setting

TOP = 8  # rows an explanation lists: the largest changes in cost, then those in calls or FLOPs not among them
STRUCTURAL = 3  # of which at least this many by the change in calls and in FLOPs, where there is one


@dataclass(frozen=True)
class Change:
    """One op (or function) on both sides, per model call: its own cost (ms of self time, or instructions), how
    many times it ran, and its FLOPs (None where not known)."""

    name: str
    a: float
    b: float
    a_calls: float | None = None
    b_calls: float | None = None
    a_flops: float | None = None
    b_flops: float | None = None

    @property
    def delta(self) -> float:
        return self.b - self.a

    @property
    def structural(self) -> bool:
        """B runs it a different number of times, or with different FLOPs: the graph changed, not just its speed."""
        return self.a_calls != self.b_calls or (self.a_flops or 0) != (self.b_flops or 0)


@dataclass
class Explanation:
    """Why one setting moved: the ops (kind "ops", unit ms per call) or functions (kind "functions", unit
    instructions per call) that changed most, the compile facts that differ, the traces and a command that
    reproduces the setting under a GPU profiler. `error` says why there is none."""

    setting_id: str
    kind: str
    unit: str
    changes: list[Change] = field(default_factory=list)
    total_a: float | None = None  # the whole profiled cost per call of each side
    total_b: float | None = None
    compile: list[tuple[str, object, object]] = field(default_factory=list)  # (fact, A, B) that differ
    traces: dict[str, str] = field(default_factory=dict)
    reproduce: str | None = None
    error: str | None = None

    def headline(self) -> str:
        """One line: the largest change, e.g. "aten::mm +0.41 ms per call (+38%), calls 12 -> 24"."""
        if self.error:
            return f"no explanation: {self.error}"
        if not self.changes:
            return "no op changed"
        top = max(self.changes, key=lambda c: abs(c.delta))
        return f"{top.name} {_signed(top.delta, self.unit)} ({_percent(top.a, top.b)}){_calls_text(top)}"

    def to_json(self) -> dict:
        data = asdict(self)
        data["compile"] = [list(row) for row in self.compile]
        data["headline"] = self.headline()
        return data


def per_call_ops(profile: dict, device: str) -> dict[str, tuple[float, float, float]]:
    """A profile's ops -> {name: (self ms, calls, FLOPs)} per model call. On a GPU the cost is the device time of
    the kernels each CPU op launched (the CPU's own time is mostly launching; the kernels' own events, the same
    time again, are left out); on a CPU the CPU's."""
    calls = profile["calls"]
    key = "self_device_us" if device == "cuda" else "self_cpu_us"
    return {name: (op[key] / 1000 / calls, op["count"] / calls, op["flops"] / calls)
            for name, op in profile["ops"].items() if not op.get("kernel")}


def explain_ops(setting_id: str, a_profile: dict, b_profile: dict, top: int = TOP, **facts) -> Explanation:
    """The op-level Explanation of one setting from both sides' profiles: the ops whose self time changed most and
    those whose calls or FLOPs changed most (`top` in all), and each side's whole profiled time per call (`facts`:
    compile, traces, reproduce)."""
    device = b_profile.get("device", "cpu")
    a, b = per_call_ops(a_profile, device), per_call_ops(b_profile, device)
    changes = choose([Change(name, *_pair(a.get(name), b.get(name))) for name in sorted(set(a) | set(b))], top)
    return Explanation(setting_id, "ops", "ms per call", changes, sum(ms for ms, _, _ in a.values()),
                       sum(ms for ms, _, _ in b.values()), **facts)


def function_changes(a_costs: dict[str, float], b_costs: dict[str, float], top: int = TOP) -> list[Change]:
    """The functions whose instructions per call changed most (callgrind counts: no calls or FLOPs)."""
    changes = [Change(name, a_costs.get(name, 0.0), b_costs.get(name, 0.0))
               for name in sorted(set(a_costs) | set(b_costs))]
    return choose(changes, top)


def choose(changes: list[Change], top: int = TOP) -> list[Change]:
    """The `top` largest changes in cost, with at least STRUCTURAL of those whose calls or FLOPs changed most
    among them; listed largest cost change first."""
    by_cost = sorted((c for c in changes if c.delta), key=lambda c: -abs(c.delta))
    by_structure = sorted((c for c in changes if c.structural),
                          key=lambda c: (-abs((c.b_flops or 0) - (c.a_flops or 0)),
                                         -abs((c.b_calls or 0) - (c.a_calls or 0))))
    chosen = by_structure[:STRUCTURAL]
    chosen += [c for c in by_cost if c not in chosen][:max(0, top - len(chosen))]
    return sorted(chosen, key=lambda c: -abs(c.delta))


def compile_changes(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """Compile facts that differ between the sides: graphs, graph breaks and their reasons, the compile's cache
    verdict, and the phases of torch.compile whose time changed by more than a tenth (the largest first)."""
    rows: list[tuple[str, object, object]] = []
    facts_a, facts_b = a.get("compiled") or {}, b.get("compiled") or {}
    for key in ("graphs", "graph_breaks", "compile_cache"):
        if facts_a.get(key) != facts_b.get(key):
            rows.append((key.replace("_", " "), facts_a.get(key), facts_b.get(key)))
    reasons_a, reasons_b = facts_a.get("graph_break_reasons") or [], facts_b.get("graph_break_reasons") or []
    for reason in [r for r in reasons_b if r not in reasons_a]:
        rows.append(("graph break only in B", None, reason))
    for reason in [r for r in reasons_a if r not in reasons_b]:
        rows.append(("graph break only in A", reason, None))
    phases_a, phases_b = a.get("compile_phases") or {}, b.get("compile_phases") or {}
    moved = [(name, phases_a.get(name, 0.0), phases_b.get(name, 0.0)) for name in set(phases_a) | set(phases_b)]
    moved = [m for m in moved if abs(m[2] - m[1]) > 0.1 * max(m[1], m[2]) and max(m[1], m[2]) >= 0.05]
    for name, ta, tb in sorted(moved, key=lambda m: -abs(m[2] - m[1]))[:TOP]:
        rows.append((f"compile phase {name} (s)", round(ta, 3), round(tb, 3)))
    return rows


def _axis_args(setting: Setting, prefix: str) -> list[str]:
    """The axis options that select exactly `setting` (with a profile that has it): `--models vit_b16 ...` for a
    vitcnn command (prefix "--"), `--vitcnn-models vit_b16 ...` for pytest (prefix "--vitcnn-"). A CNN's attention
    kernel ("none") is no axis value and left out."""
    return [x for axis in AXES.values() if getattr(setting, axis.field) != "none"
            for x in (f"{prefix}{axis.option}", str(getattr(setting, axis.field)))]


def nsys_command(setting: Setting, profile: str | None, side_opts: tuple[str, ...] = (),
                 out: str = "vitcnn-setting") -> str:
    """The command that runs one setting as pytest runs it (its benchmark file, profile and axis options, the
    side's own options), under Nsight Systems (CUDA kernels, NVTX ranges and the CPU's sampling): what a GPU
    engineer opens next when the op diff is not enough."""
    test_file = "benchmarks/test_training.py" if setting.task == "train" else "benchmarks/test_inference.py"
    pytest = ["python", "-m", "pytest", test_file, "--benchmark-only", "-p", "no:cacheprovider",
              *(["--vitcnn-profile", profile] if profile else []), *_axis_args(setting, "--vitcnn-"), *side_opts]
    return shlex.join(["nsys", "profile", "--trace=cuda,nvtx,osrt", "--sample=cpu", "-o", out, *pytest])


def ab_command(setting: Setting, a_ref: str, profile: str | None) -> str:
    """The `vitcnn ab` that measures one setting of a stored gate's `slower` row again, interleaved, with the
    baseline's commit as side A and this checkout as side B: the gate's samples cannot be profiled after the fact,
    a new A/B's `slower` row comes with its explanation."""
    return shlex.join(["python", "-m", "vitcnn", "ab", "--a-ref", a_ref, *(["--profile", profile] if profile else []),
                       *_axis_args(setting, "--")])


HEADER = ("op", "A", "B", "change", "calls A -> B", "GFLOP A -> B")


def rows(explanation: Explanation) -> list[list[str]]:
    out = []
    for c in explanation.changes:
        calls = f"{_num(c.a_calls)} -> {_num(c.b_calls)}" if c.a_calls is not None else ""
        flops = f"{_num((c.a_flops or 0) / 1e9)} -> {_num((c.b_flops or 0) / 1e9)}" if (c.a_flops or c.b_flops) else ""
        out.append([_short(c.name), _value(c.a, explanation.unit), _value(c.b, explanation.unit),
                    f"{_signed(c.delta, explanation.unit)} ({_percent(c.a, c.b)})", calls, flops])
    return out


def render(explanation: Explanation, markdown: bool = False) -> str:
    """The explanation as a block of text (terminal) or Markdown (--markdown, the PR comment)."""
    title = f"Why {explanation.setting_id} moved: {explanation.headline()}"
    lines = [f"#### {title}" if markdown else title, ""]
    if explanation.changes:
        unit = "ms per call, self time" if explanation.kind == "ops" else "instructions per call, own"
        lines.append(f"{'Ops' if explanation.kind == 'ops' else 'Functions'} that changed most ({unit}; "
                     f"whole profile A {_value(explanation.total_a, explanation.unit)}, "
                     f"B {_value(explanation.total_b, explanation.unit)}):")
        lines.append("")
        body = rows(explanation)
        header = HEADER if explanation.kind == "ops" else ("function", "A", "B", "change")
        body = body if explanation.kind == "ops" else [row[:4] for row in body]
        lines.append((table.markdown if markdown else table.text)(header, body, right=(1, 2, 3)).rstrip())
    for fact, a, b in explanation.compile:
        lines.append(f"- {fact}: A {a!r}, B {b!r}")
    for side, path in sorted(explanation.traces.items()):
        lines.append(f"- trace of side {side} (Perfetto, chrome://tracing): `{path}`" if markdown else
                     f"trace of side {side} (Perfetto, chrome://tracing): {path}")
    if explanation.reproduce:
        lines.append(f"- on a GPU, under Nsight Systems: `{explanation.reproduce}`" if markdown else
                     f"on a GPU, under Nsight Systems: {explanation.reproduce}")
    return "\n".join(lines).rstrip() + "\n"


def _pair(a: tuple | None, b: tuple | None) -> tuple:
    a, b = a or (0.0, 0.0, 0.0), b or (0.0, 0.0, 0.0)
    return a[0], b[0], a[1], b[1], a[2], b[2]


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _value(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    return f"{x:.3f} ms" if unit.startswith("ms") else f"{x / 1e6:,.2f}M"


def _signed(x: float, unit: str) -> str:
    return ("+" if x >= 0 else "-") + _value(abs(x), unit)


def _percent(a: float, b: float) -> str:
    return "new in B" if not a else "gone in B" if not b else f"{(b / a - 1) * 100:+.0f}%"


def _calls_text(c: Change) -> str:
    return f", calls {_num(c.a_calls)} -> {_num(c.b_calls)}" if c.a_calls is not None and c.a_calls != c.b_calls \
        else ""


def _short(name: str, width: int = 70) -> str:
    return name if len(name) <= width else name[:width - 3] + "..."
