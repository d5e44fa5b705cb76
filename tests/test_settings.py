"""Profiles, axis overrides, readable ids, and which combinations are never generated."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from vitcnn import settings
from vitcnn.settings import (
    COMPILE_MODES,
    LAYOUTS,
    NO_SDPA,
    PRECISIONS,
    SDPA_BACKENDS,
    Axes,
    Setting,
    expand,
    invalid_reason,
    profile_settings,
)


def test_ids_are_readable():
    assert Setting("vit_b16", 1024, 1, "bf16", "flash", "default", "nchw").id == "vit_b16-1024px-bs1-bf16-flash-default"
    cnn = Setting("convnext_b", 512, 8, "bf16", "none", "reduce-overhead", "channels_last")
    assert cnn.id == "convnext_b-512px-bs8-bf16-channels_last-reduce-overhead"


def test_training_ids_end_in_train_and_inference_ids_are_unchanged():
    infer = Setting("vit_b16", 224, 8, "bf16", "auto", "default", "nchw")
    train = Setting("vit_b16", 224, 8, "bf16", "auto", "default", "nchw", "train")
    assert infer.task == "infer" and infer.id == "vit_b16-224px-bs8-bf16-auto-default"
    assert train.id == infer.id + "-train"
    assert Setting.from_dict({k: v for k, v in infer.as_dict().items() if k != "task"}) == infer  # older files
    assert Setting.from_dict(train.as_dict()) == train
    assert invalid_reason(Setting("vit_b16", 224, 8, "bf16", "auto", "default", "nchw", "finetune"), "cuda")


def test_training_profiles():
    smoke = profile_settings("smoke-train", "cpu")
    assert {s.task for s in smoke} == {"train"} and len(smoke) == 8
    blog = profile_settings("blog-train", "cuda")
    assert {s.model for s in blog} == {"vit_b16", "convnext_b", "vitdet_b16"} and {s.task for s in blog} == {"train"}
    assert {s.resolution for s in blog} == {224, 512, 1024} and {s.batch for s in blog} == {8, 32}
    assert {s.precision for s in blog} == {"bf16"}


def test_cpu_profile_runs_the_real_models_within_its_limits():
    cpu = profile_settings("cpu", "cpu")
    assert {s.model for s in cpu} == {"vit_b16", "vitdet_b16", "convnext_b"}
    assert {s.precision for s in cpu} == {"fp32", "bf16"} and {s.task for s in cpu} == {"infer", "train"}
    assert all(s.resolution <= settings.CPU_LIMITS[s.task, s.batch] for s in cpu)
    assert max(s.resolution for s in cpu if s.task == "infer") == 1024
    # an explicit axis is taken as asked, beyond the limits
    assert {s.resolution for s in profile_settings("cpu", "cpu", resolutions=(1024,), tasks=("train",))} == {1024}


def test_smoke_profile_is_tiny_cpu_fp32():
    smoke = profile_settings("smoke", "cpu")
    assert {s.model for s in smoke} == {"vit_t16", "vitdet_t16", "convnext_atto", "nfnet_tiny"}
    assert {s.resolution for s in smoke} <= set(range(64, 129))
    assert {s.batch for s in smoke} <= {1, 2} and {s.precision for s in smoke} == {"fp32"}
    assert {s.compile_mode for s in smoke} == {"eager", "default"}
    assert len({s.id for s in smoke}) == len(smoke)
    # compiled at batch 1 only (a compiled setting costs ~6x an eager one cold), every batch eagerly
    assert {s.batch for s in smoke if s.compile_mode == "default"} == {1}
    assert {s.batch for s in smoke if s.compile_mode == "eager"} == {1, 2}
    # batches or compile modes the user chose are taken as asked
    assert {s.batch for s in profile_settings("smoke", "cpu", batches=(2,)) if s.compile_mode == "default"} == {2}
    assert {s.batch for s in profile_settings("smoke", "cpu", compile_modes=("default",))} == {1, 2}


def test_blog_lite_profile():
    lite = profile_settings("blog-lite", "cuda")
    assert {s.model for s in lite} == {"vit_b16", "convnext_b", "vitdet_b16"}
    assert {s.resolution for s in lite} == {224, 512, 1024} and {s.batch for s in lite} == {1, 32}
    assert {s.precision for s in lite} == {"bf16"}
    assert len(lite) == 3 * 3 * 2


def test_blog_profile_gives_vits_and_cnns_equally_many_candidates():
    blog = profile_settings("blog", "cuda")
    assert {s.model for s in blog} == set(settings.BLOG_MODELS)
    assert {s.resolution for s in blog} == set(settings.BLOG_RESOLUTIONS)
    assert {s.precision for s in blog} == set(settings.PRECISIONS)
    counts = settings.candidates_per_model(blog)
    for (model, res, batch), n in counts.items():  # every model gets as many candidates at each size and batch
        assert n == (16 if batch == 1 else 8), (model, res, batch, n)  # 4 precisions x 2 kernels (x 2 modes at bs1)
    assert not any(s.sdpa in ("flash", "cudnn") and s.precision in ("fp32", "tf32") for s in blog)
    assert {s.layout for s in blog if s.family == "cnn"} == {"nchw", "channels_last"}
    assert {s.batch for s in blog if s.compile_mode == "reduce-overhead"} == {1}


def test_essay_profile_times_cuda_graphs_everywhere_under_essay_conventions():
    essay = profile_settings("essay", "cuda")
    assert {s.compile_mode for s in essay} == {"reduce-overhead"} and {s.batch for s in essay} == {1, 8, 32}
    assert settings.PROFILES["essay"].conventions == "essay"
    assert len(set(settings.candidates_per_model(essay).values())) == 1


def test_overrides_narrow_any_axis():
    chosen = profile_settings("blog", "cuda", models=("vit_b16",), resolutions=(1024,), batches=(1,),
                              precisions=("bf16",), sdpa=("flash", "math"), compile_modes=("default",))
    assert [s.id for s in chosen] == ["vit_b16-1024px-bs1-bf16-flash-default", "vit_b16-1024px-bs1-bf16-math-default"]


@pytest.mark.parametrize("overrides, message", [
    ({"models": ("resnet",)}, "unknown model"), ({"colour": ("red",)}, "unknown axes"),
])
def test_bad_overrides_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        profile_settings("smoke", "cpu", **overrides)


def test_unknown_profile_names_the_choices():
    with pytest.raises(ValueError, match="smoke, blog-lite, blog"):
        profile_settings("fast", "cpu")


def _axis(values) -> st.SearchStrategy[tuple]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=len(values), unique=True).map(tuple)


def test_generated_settings_are_always_valid():
    """Any grid over the axes expands only to runnable settings, each made of the grid's own values. Grids that
    expand to nothing prove nothing and are discarded (assume); the test asserts it saw enough that did not."""
    seen: list[Setting] = []

    @hypothesis_settings(max_examples=100, deadline=None, database=None)
    @given(_axis(["vit_b16", "vitdet_t16", "convnext_b", "nfnet_f0"]), _axis(PRECISIONS),
           _axis((*SDPA_BACKENDS, NO_SDPA)), _axis(COMPILE_MODES), _axis(LAYOUTS), st.sampled_from(["cpu", "cuda"]))
    def check(models, precisions, sdpa, modes, layouts, device):
        axes = Axes(models, (224,), (1,), precisions, sdpa, modes, layouts)
        generated = expand(axes, device)
        assume(generated)
        assert len(set(generated)) == len(generated)
        for s in generated:
            assert invalid_reason(s, device) is None
            assert (s.model, s.precision, s.compile_mode) in itertools.product(models, precisions, modes)
            if s.family == "vit":
                assert s.sdpa in sdpa and s.sdpa != NO_SDPA and s.layout == "nchw"
            else:
                assert s.sdpa == NO_SDPA and s.layout in layouts
            assert not (s.sdpa in ("flash", "cudnn") and s.precision not in ("bf16", "fp16"))
            if device == "cpu":
                assert s.precision != "tf32" and s.sdpa not in ("efficient", "cudnn")
                assert s.compile_mode != "reduce-overhead"
        seen.extend(generated)

    check()
    assert {s.family for s in seen} == {"vit", "cnn"} and len(seen) >= 100
    assert {s.sdpa for s in seen} >= {"flash", "math", NO_SDPA} and {s.layout for s in seen} == set(LAYOUTS)


@pytest.mark.parametrize("setting, device, message", [
    (Setting("vit_b16", 224, 1, "fp32", "flash", "default", "nchw"), "cuda", "bf16 or fp16"),
    (Setting("vit_b16", 224, 1, "bf16", "auto", "default", "channels_last"), "cuda", "CNNs only"),
    (Setting("convnext_b", 224, 1, "bf16", "flash", "default", "nchw"), "cuda", "no attention"),
    (Setting("convnext_b", 224, 1, "tf32", "none", "default", "nchw"), "cpu", "TF32"),
    (Setting("convnext_b", 224, 1, "fp32", "none", "reduce-overhead", "nchw"), "cpu", "CUDA graphs"),
    (Setting("vit_b16", 200, 1, "fp32", "auto", "default", "nchw"), "cuda", "multiple of 16"),
])
def test_invalid_reasons(setting, device, message):
    assert message in invalid_reason(setting, device)
