"""How long a selection takes to run: per-setting seconds measured on named machines, kept in the package.

The figures live in costs.json beside this module, derived from committed run files (results/) by `derive`
(`scripts/derive-costs.py`; tests/scale/test_costs.py checks the file is what the results give). A figure is a
setting's `setting_wall_s`: its whole cost in its process (build, checks, compiles and compile extras, warm-up,
timing, the eager twin). Run files from before that field existed, and GPU first-contact slices, give one
figure per slice instead: the slice's wall time (process start and imports included) split evenly over its settings.

A setting nobody measured on the device gets the shard model's estimate (shard.estimated_seconds), scaled by how
far that model was off on the measured settings of the same model and device (the median ratio), and says so;
on a CPU, without such settings, it gets none. `vitcnn plan` and the docs' run-time table print what is
measured, what is modelled, what is unknown, and on which machine.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vitcnn.settings import Setting

COSTS_FILE = Path(__file__).with_name("costs.json")
SLICE_STEP = re.compile(r"^\|\s*slice (\d+)px bs(\d+)\s*\|\s*[\d.]+\s*\|\s*([\d.]+)\s*\|\s*ok\s*\|", re.M)


@dataclass(frozen=True)
class Measured:
    """One setting's measured seconds, and whether the compile extras ran in that measurement."""

    setting: Setting
    seconds: float
    extras: bool


@dataclass(frozen=True)
class Machine:
    """The measured settings of one machine: what it is, the device type it ran, where the figures came from."""

    name: str  # the run's device label, e.g. "Intel(R) Xeon(R) Processor (2 cores, AMX)"
    device: str  # "cpu" or "cuda"
    sources: tuple[str, ...]  # the run files (paths under results/) the figures were derived from
    measured: dict[str, Measured]  # by setting id


@dataclass(frozen=True)
class Estimate:
    """One setting's expected wall time and where the figure comes from."""

    setting: Setting
    seconds: float | None  # None: no estimate (never measured on a CPU, where the shard model means nothing)
    machine: str | None  # the machine it was measured on; None: modelled
    note: str  # "measured", "measured without the compile extras (a lower bound)", "model x0.8 (...)", ...

    @property
    def measured(self) -> bool:
        return self.machine is not None


def load(path: Path = COSTS_FILE) -> list[Machine]:
    """The machines in a costs file (the package's by default)."""
    data = json.loads(path.read_text())
    return [Machine(m["name"], m["device"], tuple(m["sources"]),
                    {e["id"]: Measured(Setting.from_dict(e["setting"]), e["seconds"], e["extras"])
                     for e in m["settings"]}) for m in data["machines"]]


def dump(machines: Sequence[Machine]) -> str:
    """costs.json's text: machines and settings in a stable order, so a re-derivation diffs cleanly."""
    return json.dumps({"machines": [
        {"name": m.name, "device": m.device, "sources": list(m.sources),
         "settings": [{"id": sid, "seconds": round(e.seconds, 1), "extras": e.extras, "setting": e.setting.as_dict()}
                      for sid, e in sorted(m.measured.items())]} for m in machines]}, indent=1) + "\n"


def _extras_ran(info: dict) -> bool:
    return info.get("compile_cold_s") is not None or info.get("eager_twin_median_s") is not None


def from_runs(paths: Iterable[str | Path], root: Path | None = None) -> list[Machine]:
    """Machines from run files whose settings carry `setting_wall_s` (the latest file wins for a setting), grouped
    by the run's device label."""
    from vitcnn.runfile import load_run

    machines: dict[tuple[str, str], tuple[list[str], dict[str, Measured]]] = {}
    for path in paths:
        run = load_run(path)
        timed = [r for r in run.results.values() if r.status == "ok" and r.info.get("setting_wall_s")]
        if not timed:
            continue
        sources, measured = machines.setdefault((run.device_label, timed[0].info.get("device", "cpu")), ([], {}))
        sources.append(_relative(path, root))
        for r in timed:
            measured[r.setting.id] = Measured(r.setting, float(r.info["setting_wall_s"]), _extras_ran(r.info))
    return [Machine(name, device, tuple(s), m) for (name, device), (s, m) in machines.items()]


def from_first_contact(summary: str | Path, runs: Iterable[str | Path], root: Path | None = None) -> list[Machine]:
    """Machines from a GPU first-contact folder: each `slice RESpx bsB` step that ended `ok` in its summary.md,
    its wall time split evenly over the settings of the run file holding exactly that resolution and batch."""
    from vitcnn.runfile import load_run

    loaded = [load_run(p) for p in runs]
    found: dict[str, tuple[list[str], dict[str, Measured]]] = {}
    for res, batch, wall in SLICE_STEP.findall(Path(summary).read_text()):
        for run in loaded:
            ok = [r for r in run.results.values() if r.status == "ok"]
            if ok and all((r.setting.resolution, r.setting.batch) == (int(res), int(batch)) for r in ok):
                sources, measured = found.setdefault(run.device_label, ([], {}))
                sources.append(_relative(run.path, root))
                for r in ok:
                    measured[r.setting.id] = Measured(r.setting, float(wall) / len(ok), _extras_ran(r.info))
    return [Machine(name, "cuda", tuple(s), m) for name, (s, m) in found.items()]


def _relative(path: str | Path, root: Path | None) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(root.resolve())) if root and path.is_relative_to(root.resolve()) else str(path)


def _model_ratios(machines: Sequence[Machine], model: Callable[[Setting], float]) -> dict[str, float]:
    """Per model: the median of measured / modelled seconds over the machines' settings of that model."""
    ratios: dict[str, list[float]] = {}
    for m in machines:
        for e in m.measured.values():
            ratios.setdefault(e.setting.model, []).append(e.seconds / model(e.setting))
    return {name: statistics.median(values) for name, values in ratios.items()}


def estimate(settings: Sequence[Setting], device: str, compile_extras: bool,
             machines: Sequence[Machine] | None = None, model: Callable[[Setting], float] | None = None
             ) -> list[Estimate]:
    """Each setting's expected seconds on `device`: measured where a machine of that device type measured it;
    else the shard model scaled by its median error on the measured settings of the same model and device; else, on
    a GPU, the shard model as it is (a model of a nominal GPU) and, on a CPU, no figure at all (None: the GPU model
    would be off by orders of magnitude there). `compile_extras`: whether the run will measure them (a figure
    measured without them is then a lower bound)."""
    from vitcnn.scale.shard import estimated_seconds

    machines = [m for m in (load() if machines is None else machines) if m.device == device]
    model = model or estimated_seconds
    ratios: dict[str, float] | None = None
    out = []
    for setting in settings:
        where = next((m for m in machines if setting.id in m.measured), None)
        if where is not None:
            measured = where.measured[setting.id]
            lower = compile_extras and setting.compile_mode != "eager" and not measured.extras
            note = "measured without the compile extras (a lower bound)" if lower else "measured"
            out.append(Estimate(setting, measured.seconds, where.name, note))
            continue
        if ratios is None:
            ratios = _model_ratios(machines, model)
        ratio = ratios.get(setting.model)
        if ratio:
            out.append(Estimate(setting, model(setting) * ratio, None,
                                f"not measured on {device}: the model x{ratio:.2g} (its error on {setting.model}'s "
                                f"measured settings)"))
        elif device == "cuda":
            out.append(Estimate(setting, model(setting), None, "not measured on cuda: the shard model, uncalibrated"))
        else:
            out.append(Estimate(setting, None, None, f"never measured on {device}: no estimate"))
    return out
