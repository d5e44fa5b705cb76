"""Benchmark settings (one point of the sweep) and the named profiles that generate them.

A profile is a grid over axes; combinations that cannot run (flash attention in fp32, channels_last for a ViT,
CUDA-graph compile modes on CPU) are never generated, so every generated setting is a fair, runnable candidate.
"""

from __future__ import annotations

import itertools
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


BLOG_MODELS = ("vit_b16", "vitdet_b16", "convnext_b", "nfnet_f0", "nfnet_f1")
BLOG_RESOLUTIONS = (128, 224, 256, 384, 448, 512, 768, 896, 1024)

PROFILES: dict[str, Axes] = {
    # Tiny twins on CPU: a few minutes on two cores, exercising every stage of the harness.
    "smoke": Axes(
        models=("vit_t16", "vitdet_t16", "convnext_atto", "nfnet_tiny"),
        resolutions=(64, 128), batches=(1, 2), precisions=("fp32",), sdpa=("auto",),
        compile_modes=("eager", "default"), layouts=("nchw",),
    ),
    # The essay's headline comparison, one candidate per model: ViTs with SDPA auto, CNNs with channels_last.
    "blog-lite": Axes(
        models=("vit_b16", "convnext_b", "vitdet_b16"), resolutions=(224, 512, 1024), batches=(1, 32),
        precisions=("bf16",), sdpa=("auto",), compile_modes=("default",), layouts=("channels_last",),
    ),
    # The essay's grid. Two kernel candidates per model and precision: flash/cudnn (or efficient/math in
    # fp32/tf32, where flash/cudnn are not generated) for ViTs, nchw/channels_last for CNNs. At batch 1 each also
    # runs with CUDA graphs (reduce-overhead), where launch overhead otherwise dominates; at larger batches
    # CUDA graphs change little, so only `default` runs there.
    "blog": Axes(
        models=BLOG_MODELS, resolutions=BLOG_RESOLUTIONS, batches=(1, 8, 32), precisions=PRECISIONS,
        sdpa=("flash", "cudnn", "efficient", "math"), compile_modes=("default", "reduce-overhead"), layouts=LAYOUTS,
    ),
    # The essay's own conventions, to compare with its figures (docs/measuring.md, "Essay-compatible mode"): CUDA-graph timing
    # for every setting, and (applied by measure for this profile) cuDNN TF32 on in fp32 and FLOPs without
    # attention. Same candidates as `blog` otherwise.
    "essay": Axes(
        models=BLOG_MODELS, resolutions=BLOG_RESOLUTIONS, batches=(1, 8, 32), precisions=PRECISIONS,
        sdpa=("flash", "cudnn", "efficient", "math"), compile_modes=("reduce-overhead",), layouts=LAYOUTS,
    ),
    # Training steps of the tiny twins: the smoke profile's training counterpart (a minute or two on two cores).
    "smoke-train": Axes(
        models=("vit_t16", "vitdet_t16", "convnext_atto", "nfnet_tiny"), resolutions=(64,), batches=(2,),
        precisions=("fp32",), sdpa=("auto",), compile_modes=("eager", "default"), layouts=("nchw",),
        tasks=("train",),
    ),
    # The essay's open question on a GPU: a training step of the three main models, as practitioners train (bf16).
    "blog-train": Axes(
        models=("vit_b16", "convnext_b", "vitdet_b16"), resolutions=(224, 512, 1024), batches=(8, 32),
        precisions=("bf16",), sdpa=("auto",), compile_modes=("default",), layouts=("channels_last",),
        tasks=("train",),
    ),
    # The real models on a CPU (fp32, and bf16 where the CPU has it), inference and training; the grid is trimmed
    # to what a CPU finishes in about an hour (CPU_LIMITS).
    "cpu": Axes(
        models=("vit_b16", "vitdet_b16", "convnext_b"), resolutions=(224, 384, 512, 1024), batches=(1, 8),
        precisions=("fp32", "bf16"), sdpa=("auto",), compile_modes=("default",), layouts=("channels_last",),
        tasks=("infer", "train"),
    ),
}
# What each profile is for, in one line: the docs' profile table is generated from PROFILES and this.
PROFILE_PURPOSE = {
    "smoke": "tiny twins on a CPU: every stage of the harness in a few minutes on two cores (CPU default)",
    "blog-lite": "the essay's headline comparison on a GPU, one candidate per model (GPU default)",
    "blog": "the essay's grid: two kernel candidates per model and precision, CUDA graphs as a batch-1 candidate",
    "essay": "the blog grid under the essay's own conventions, to compare with its figures",
    "smoke-train": "training steps of the tiny twins: the smoke profile's training counterpart",
    "blog-train": "training steps of the three main models in bf16, as practitioners train, on a GPU",
    "cpu": "the real models on a CPU, inference and training, trimmed to about an hour on two cores",
}
# `cpu` profile: the largest resolution each (task, batch) runs at. A ViT-B/16 inference call at 1024 px takes
# about 10 s on a 2-core VM; a training step costs about 3x its forward.
CPU_LIMITS = {("infer", 1): 1024, ("infer", 8): 224, ("train", 1): 384, ("train", 8): 0}
# Profiles measured under other conventions than vitcnn's strict ones (see MeasureOptions.conventions).
PROFILE_CONVENTIONS = {"essay": "essay"}
# Profiles whose compiled settings also measure cold and warm compile time and an eager twin (speedup over eager,
# memory compression) by default: where those numbers are wanted and their cost (on the 2-core VM ~15 s of
# compiling per smoke setting; on a GPU seconds per blog-lite setting) is small beside the run.
PROFILE_COMPILE_EXTRAS = ("smoke", "blog-lite")
DEFAULT_PROFILE = {"cpu": "smoke", "cuda": "blog-lite"}


def _blog_filter(setting: Setting) -> bool:
    """In `blog`/`essay`, half precision tries flash/cudnn and fp32/tf32 tries efficient/math: two candidates each."""
    if setting.sdpa == NO_SDPA:
        return True
    half = setting.precision in HALF_PRECISIONS
    return (setting.sdpa in ("flash", "cudnn")) == half


def profile_axes(name: str) -> Axes:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}") from None


def profile_settings(name: str, device_type: str, **overrides) -> list[Setting]:
    """Settings of profile `name` on `device_type`, with any axis replaced by `overrides` (e.g. models=(...))."""
    axes = profile_axes(name)
    unknown = set(overrides) - {f.name for f in fields(Axes)}
    if unknown:
        raise ValueError(f"unknown axes {sorted(unknown)}; choose from {[f.name for f in fields(Axes)]}")
    for model in overrides.get("models", ()):
        models.spec(model)
    axes = replace(axes, **{k: tuple(v) for k, v in overrides.items() if v})
    settings = expand(axes, device_type)
    if name in ("blog", "essay") and "sdpa" not in overrides:
        settings = [s for s in settings if _blog_filter(s)]
    if name == "blog" and "compile_modes" not in overrides:  # CUDA graphs as a candidate at batch 1 only
        settings = [s for s in settings if s.compile_mode != "reduce-overhead" or s.batch == 1]
    if name == "cpu" and not {"tasks", "resolutions", "batches"} & set(overrides):
        settings = [s for s in settings if s.resolution <= CPU_LIMITS[s.task, s.batch]]
    return settings


def candidates_per_model(settings: list[Setting]) -> dict[tuple[str, int, int], int]:
    """How many settings each (model, resolution, batch) was given: the fairness count of a best-of."""
    counts: dict[tuple[str, int, int], int] = {}
    for s in settings:
        key = (s.model, s.resolution, s.batch)
        counts[key] = counts.get(key, 0) + 1
    return counts
