"""Benchmark settings (one point of the sweep), the axes they vary along, and the named profiles that generate them.

A profile is a grid over axes; combinations that cannot run (flash attention in fp32, channels_last for a ViT,
CUDA-graph compile modes on CPU) are never generated, so every generated setting is a fair, runnable candidate.
A selection is a profile narrowed by axis options (`--vitcnn-res 64`, `vitcnn ab --res 64`): AXES names each axis
once, for the Setting field it fills, the options that narrow it and the values it may take.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, fields, replace

from vitcnn.zoo import models

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
SDPA_BACKENDS = ("auto", "math", "flash", "efficient", "cudnn")
COMPILE_MODES = ("eager", "default", "reduce-overhead", "max-autotune")
LAYOUTS = ("nchw", "channels_last")
HALF_PRECISIONS = ("bf16", "fp16")
TASKS = ("infer", "train")  # a forward pass; a training step (forward, loss, backward, optimizer step)
NO_SDPA = "none"  # the SDPA axis of a model without attention


@dataclass(frozen=True, order=True)
class Setting:
    """One benchmarked configuration. `sdpa` is "none" for CNNs; `layout` is "nchw" for ViTs.

    `task` is last and defaults to "infer" so that settings (and run files) from before the task axis keep their
    meaning and their ids.
    """

    model: str
    resolution: int
    batch: int
    precision: str
    sdpa: str
    compile_mode: str
    layout: str
    task: str = "infer"

    @property
    def id(self) -> str:
        """Readable test id, e.g. vit_b16-1024px-bs1-bf16-flash-default or convnext_b-512px-bs8-bf16-channels_last-default;
        a training step ends in -train (inference ids are unchanged, so older baselines still match)."""
        variant = self.sdpa if self.sdpa != NO_SDPA else self.layout
        task = "" if self.task == "infer" else f"-{self.task}"
        return f"{self.model}-{self.resolution}px-bs{self.batch}-{self.precision}-{variant}-{self.compile_mode}{task}"

    @property
    def family(self) -> str:
        return models.spec(self.model).family

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Setting:
        """The setting a run file recorded; a field with a default (`task`, newer than some files) may be absent."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data or f.default is MISSING})


def invalid_reason(setting: Setting, device_type: str) -> str | None:
    """Why `setting` cannot run on `device_type` ("cpu" or "cuda"), or None if it can."""
    spec = models.spec(setting.model)
    try:
        models.check_img_size(setting.model, setting.resolution)
    except ValueError as exc:
        return str(exc)
    if setting.batch < 1:
        return f"batch must be >= 1, got {setting.batch}"
    if setting.precision not in PRECISIONS:
        return f"unknown precision {setting.precision!r}; choose from {', '.join(PRECISIONS)}"
    if setting.compile_mode not in COMPILE_MODES:
        return f"unknown compile mode {setting.compile_mode!r}; choose from {', '.join(COMPILE_MODES)}"
    if setting.task not in TASKS:
        return f"unknown task {setting.task!r}; choose from {', '.join(TASKS)}"
    if setting.layout not in LAYOUTS:
        return f"unknown layout {setting.layout!r}; choose from {', '.join(LAYOUTS)}"
    if spec.has_attention:
        if setting.sdpa not in SDPA_BACKENDS:
            return f"unknown SDPA backend {setting.sdpa!r}; choose from {', '.join(SDPA_BACKENDS)}"
        if setting.layout != "nchw":
            return "channels_last is an axis for CNNs only"
    elif setting.sdpa != NO_SDPA:
        return f"{setting.model} has no attention, so no SDPA backend"
    if setting.sdpa in ("flash", "cudnn") and setting.precision not in HALF_PRECISIONS:
        return f"the {setting.sdpa} SDPA kernel needs bf16 or fp16, not {setting.precision}"
    if device_type == "cpu":
        if setting.precision == "tf32":
            return "TF32 is a CUDA tensor-core mode"
        if setting.sdpa in ("efficient", "cudnn"):
            return f"the {setting.sdpa} SDPA kernel is CUDA-only"
        if setting.compile_mode == "reduce-overhead":
            return "reduce-overhead means CUDA graphs; there are none on CPU"
    return None


@dataclass(frozen=True)
class Axes:
    """The axes of a sweep. `sdpa` lists candidates per precision family so ViTs and CNNs get equally many."""

    models: tuple[str, ...]
    resolutions: tuple[int, ...]
    batches: tuple[int, ...]
    precisions: tuple[str, ...]
    sdpa: tuple[str, ...]
    compile_modes: tuple[str, ...]
    layouts: tuple[str, ...]
    tasks: tuple[str, ...] = ("infer",)


def expand(axes: Axes, device_type: str) -> list[Setting]:
    """Every valid setting of the grid, in a stable order (task, model, resolution, batch, ...)."""
    settings: list[Setting] = []
    for task, model, res, batch, precision, compile_mode in itertools.product(
        axes.tasks, axes.models, axes.resolutions, axes.batches, axes.precisions, axes.compile_modes
    ):
        if models.spec(model).has_attention:
            variants = [(sdpa, "nchw") for sdpa in axes.sdpa]
        else:
            variants = [(NO_SDPA, layout) for layout in axes.layouts]
        for sdpa, layout in variants:
            setting = Setting(model, res, batch, precision, sdpa, compile_mode, layout, task)
            if invalid_reason(setting, device_type) is None:
                settings.append(setting)
    return settings


@dataclass(frozen=True)
class Axis:
    """One axis of a sweep: its Axes field, the Setting field it fills, the suffix of the options that narrow it
    (`--vitcnn-<option>` in pytest, `--<option>` in `vitcnn ab`), how a value is read, and the values it may take
    (None: checked elsewhere, e.g. a model by the registry)."""

    name: str
    field: str
    option: str
    parse: Callable[[str], object]
    choices: tuple | None = None

    @property
    def pytest_option(self) -> str:
        return f"--vitcnn-{self.option}"


AXES: dict[str, Axis] = {axis.name: axis for axis in (
    Axis("models", "model", "models", str),
    Axis("resolutions", "resolution", "res", int),
    Axis("batches", "batch", "batch", int),
    Axis("precisions", "precision", "precision", str, PRECISIONS),
    Axis("sdpa", "sdpa", "sdpa", str, SDPA_BACKENDS),
    Axis("compile_modes", "compile_mode", "compile", str, COMPILE_MODES),
    Axis("layouts", "layout", "layout", str, LAYOUTS),
    Axis("tasks", "task", "task", str, TASKS),
)}


def parse_values(axis: Axis, text: str) -> tuple:
    """A comma-separated option value as the axis' values, e.g. "64, 128" -> (64, 128)."""
    try:
        return tuple(axis.parse(v.strip()) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise ValueError(f"cannot parse {text!r}: {exc}") from None


def parse_overrides(texts: Mapping[str, str | None]) -> dict[str, tuple]:
    """Axis overrides from option values keyed by axis name (None or empty: the profile's own values)."""
    return {name: parse_values(AXES[name], text) for name, text in texts.items() if text}


SettingFilter = Callable[["Setting", frozenset[str]], bool]


def _keep_all(setting: Setting, overridden: frozenset[str]) -> bool:
    return True


@dataclass(frozen=True)
class Profile:
    """A named grid of settings and how it is measured.

    `keep` drops generated settings the profile does not want (given which axes the user overrode: an axis the
    user chose is theirs); `conventions` are vitcnn's strict ones or the essay's (MeasureOptions.conventions);
    `compile_extras`: compiled settings also measure cold and warm compile time and an eager twin by default;
    `default_on`: the device types that run this profile when none is named."""

    name: str
    purpose: str  # one line: the docs' profile table is generated from it
    axes: Axes
    keep: SettingFilter = _keep_all
    conventions: str = "strict"
    compile_extras: bool = False
    default_on: tuple[str, ...] = ()

    def settings(self, device_type: str, **overrides) -> list[Setting]:
        """The profile's settings on `device_type`, with any axis replaced by `overrides` (e.g. models=(...))."""
        unknown = set(overrides) - {f.name for f in fields(Axes)}
        if unknown:
            raise ValueError(f"unknown axes {sorted(unknown)}; choose from {[f.name for f in fields(Axes)]}")
        for model in overrides.get("models", ()):
            models.spec(model)
        axes = replace(self.axes, **{k: tuple(v) for k, v in overrides.items() if v})
        return [s for s in expand(axes, device_type) if self.keep(s, frozenset(overrides))]


BLOG_MODELS = ("vit_b16", "vitdet_b16", "convnext_b", "nfnet_f0", "nfnet_f1")
BLOG_RESOLUTIONS = (128, 224, 256, 384, 448, 512, 768, 896, 1024)
# `cpu` profile: the largest resolution each (task, batch) runs at. A ViT-B/16 inference call at 1024 px takes
# about 10 s on a 2-core VM; a training step costs about 3x its forward.
CPU_LIMITS = {("infer", 1): 1024, ("infer", 8): 224, ("train", 1): 384, ("train", 8): 0}


def _two_kernel_candidates(setting: Setting, overridden: frozenset[str]) -> bool:
    """In `blog`/`essay`, half precision tries flash/cudnn and fp32/tf32 tries efficient/math: two candidates each
    (unless the user chose the SDPA axis)."""
    if setting.sdpa == NO_SDPA or "sdpa" in overridden:
        return True
    return (setting.sdpa in ("flash", "cudnn")) == (setting.precision in HALF_PRECISIONS)


def _blog_keep(setting: Setting, overridden: frozenset[str]) -> bool:
    """Two kernel candidates, and CUDA graphs as a candidate at batch 1 only (unless the user chose compile modes):
    at larger batches CUDA graphs change little."""
    graphs_ok = setting.compile_mode != "reduce-overhead" or setting.batch == 1 or "compile_modes" in overridden
    return _two_kernel_candidates(setting, overridden) and graphs_ok


def _cpu_keep(setting: Setting, overridden: frozenset[str]) -> bool:
    """What a CPU finishes in about an hour (CPU_LIMITS), unless the user chose tasks, resolutions or batches."""
    return bool({"tasks", "resolutions", "batches"} & overridden) or \
        setting.resolution <= CPU_LIMITS[setting.task, setting.batch]


def _smoke_keep(setting: Setting, overridden: frozenset[str]) -> bool:
    """Compiled settings at batch 1 only (unless the user chose batches or compile modes): a compiled tiny setting
    costs ~25 s cold on two cores against ~4 s eager, and batch 1, where launch overhead shows, is where compiling
    differs most from eager; batch 2 is still timed eagerly."""
    return setting.compile_mode == "eager" or setting.batch == 1 or bool({"batches", "compile_modes"} & overridden)


TINY_MODELS = ("vit_t16", "vitdet_t16", "convnext_atto", "nfnet_tiny")
MAIN_MODELS = ("vit_b16", "convnext_b", "vitdet_b16")
BLOG_AXES = Axes(models=BLOG_MODELS, resolutions=BLOG_RESOLUTIONS, batches=(1, 8, 32), precisions=PRECISIONS,
                 sdpa=("flash", "cudnn", "efficient", "math"), compile_modes=("default", "reduce-overhead"),
                 layouts=LAYOUTS)

PROFILES: dict[str, Profile] = {p.name: p for p in (
    # Tiny twins on CPU: a few minutes on two cores, exercising every stage of the harness.
    Profile("smoke", "tiny twins on a CPU: every stage of the harness in a few minutes on two cores, compiled at "
                     "batch 1 only (CPU default)",
            Axes(models=TINY_MODELS, resolutions=(64, 128), batches=(1, 2), precisions=("fp32",), sdpa=("auto",),
                 compile_modes=("eager", "default"), layouts=("nchw",)),
            keep=_smoke_keep, compile_extras=True, default_on=("cpu",)),
    # The essay's headline comparison, one candidate per model: ViTs with SDPA auto, CNNs with channels_last.
    Profile("blog-lite", "the essay's headline comparison on a GPU, one candidate per model (GPU default)",
            Axes(models=MAIN_MODELS, resolutions=(224, 512, 1024), batches=(1, 32), precisions=("bf16",),
                 sdpa=("auto",), compile_modes=("default",), layouts=("channels_last",)),
            compile_extras=True, default_on=("cuda",)),
    # The essay's grid. Two kernel candidates per model and precision: flash/cudnn (or efficient/math in
    # fp32/tf32, where flash/cudnn are not generated) for ViTs, nchw/channels_last for CNNs. At batch 1 each also
    # runs with CUDA graphs (reduce-overhead), where launch overhead otherwise dominates.
    Profile("blog", "the essay's grid: two kernel candidates per model and precision, CUDA graphs as a batch-1 "
                    "candidate", BLOG_AXES, keep=_blog_keep),
    # The essay's own conventions, to compare with its figures (docs/measuring.md, "Essay-compatible mode"):
    # CUDA-graph timing for every setting, and cuDNN TF32 on in fp32 and FLOPs without attention. Same candidates
    # as `blog` otherwise.
    Profile("essay", "the blog grid under the essay's own conventions, to compare with its figures",
            replace(BLOG_AXES, compile_modes=("reduce-overhead",)), keep=_two_kernel_candidates,
            conventions="essay"),
    # Training steps of the tiny twins: the smoke profile's training counterpart (a minute or two on two cores).
    Profile("smoke-train", "training steps of the tiny twins: the smoke profile's training counterpart",
            Axes(models=TINY_MODELS, resolutions=(64,), batches=(2,), precisions=("fp32",), sdpa=("auto",),
                 compile_modes=("eager", "default"), layouts=("nchw",), tasks=("train",))),
    # The essay's open question on a GPU: a training step of the three main models, as practitioners train (bf16).
    Profile("blog-train", "training steps of the three main models in bf16, as practitioners train, on a GPU",
            Axes(models=MAIN_MODELS, resolutions=(224, 512, 1024), batches=(8, 32), precisions=("bf16",),
                 sdpa=("auto",), compile_modes=("default",), layouts=("channels_last",), tasks=("train",))),
    # The real models on a CPU (fp32, and bf16 where the CPU has it), inference and training; the grid is trimmed
    # to what a CPU finishes in about an hour (CPU_LIMITS).
    Profile("cpu", "the real models on a CPU, inference and training, trimmed to about an hour on two cores",
            Axes(models=("vit_b16", "vitdet_b16", "convnext_b"), resolutions=(224, 384, 512, 1024), batches=(1, 8),
                 precisions=("fp32", "bf16"),
                 sdpa=("auto",), compile_modes=("default",), layouts=("channels_last",), tasks=("infer", "train")),
            keep=_cpu_keep),
)}


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}") from None


def default_profile(device_type: str) -> Profile:
    """The profile a run on `device_type` measures when none is named."""
    return next(p for p in PROFILES.values() if device_type in p.default_on)


def profile_settings(name: str, device_type: str, **overrides) -> list[Setting]:
    """Settings of profile `name` on `device_type`, with any axis replaced by `overrides` (e.g. models=(...))."""
    return profile(name).settings(device_type, **overrides)


def check_overrides(profile_name: str, overrides: Mapping[str, tuple]) -> None:
    """Axis values no setting could ever take are errors naming the option and the valid choices, not silent
    skips (a ValueError: the plugin makes it a usage error, `vitcnn ab` names its own option)."""
    for name, values in overrides.items():
        axis = AXES[name]
        bad = [v for v in values if axis.choices is not None and v not in axis.choices]
        if bad:
            raise ValueError(f"{axis.pytest_option}: unknown value {', '.join(map(repr, bad))}; "
                             f"choose from {', '.join(axis.choices)}")
    if any(b < 1 for b in overrides.get("batches", ())):
        raise ValueError(f"{AXES['batches'].pytest_option}: batch sizes must be >= 1, got {overrides['batches']}")
    for model in overrides.get("models") or profile(profile_name).axes.models:
        for res in overrides.get("resolutions", ()):
            try:
                models.check_img_size(model, res)
            except ValueError as exc:
                raise ValueError(f"{AXES['resolutions'].pytest_option}: {exc}") from None


def select(profile_name: str, device_type: str, overrides: Mapping[str, tuple]) -> list[Setting]:
    """The settings a run selects: the profile narrowed by checked axis overrides."""
    check_overrides(profile_name, overrides)
    return profile_settings(profile_name, device_type, **overrides)


def describe_selection(profile_name: str, options: Mapping[str, str], keyword: str | None = None) -> str:
    """The selection in words, e.g. "smoke with --vitcnn-models vit_t16 --vitcnn-res 64, -k 'eager'": a report
    must not call a narrowed run by its profile's name alone."""
    narrowed = " ".join(f"{option} {value}" for option, value in options.items())
    text = f"{profile_name} with {narrowed}" if narrowed else profile_name
    return f"{text}, -k {keyword!r}" if keyword else text


def candidates_per_model(settings: list[Setting]) -> dict[tuple[str, int, int], int]:
    """How many settings each (model, resolution, batch) was given: the fairness count of a best-of."""
    counts: dict[tuple[str, int, int], int] = {}
    for s in settings:
        key = (s.model, s.resolution, s.batch)
        counts[key] = counts.get(key, 0) + 1
    return counts
