"""Model registry: name -> builder(img_size) for the benchmarked backbones and their tiny CPU twins.

Every model is a real timm model with random weights (no downloads), in eval mode. The specs (names, families,
strides) are plain data: timm and torch are imported only when a model is built, so choosing settings does not load
them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """What a benchmark needs to know about a model before building it."""

    name: str
    family: str  # "vit" or "cnn"
    stride: int  # patch size (ViT) or total downsampling (CNN); img_size must be a multiple
    has_attention: bool
    tiny: bool  # a CPU-sized twin of a benchmarked model
    builder: Callable[..., nn.Module]
    description: str


def vitdet_window_size(grid: int, pretrain_grid: int = 14) -> int:
    """Default ViTDet window for a square patch grid: the pre-training grid if it divides the grid, else the
    divisor of the grid closest to 14..16 (larger wins ties), so no padding is ever needed."""
    if grid % pretrain_grid == 0:
        return pretrain_grid
    divisors = [d for d in range(1, grid + 1) if grid % d == 0]

    def distance(d: int) -> int:
        return 0 if 14 <= d <= 16 else min(abs(d - 14), abs(d - 16))

    return min(divisors, key=lambda d: (distance(d), -d))


def _timm(model_name: str, **fixed) -> Callable[..., nn.Module]:
    def build(img_size: int, **overrides) -> nn.Module:
        import timm

        return timm.create_model(model_name, pretrained=False, **{**fixed, **overrides})

    return build


def _timm_vit(model_name: str, **fixed) -> Callable[..., nn.Module]:
    def build(img_size: int, **overrides) -> nn.Module:
        import timm

        return timm.create_model(model_name, pretrained=False, img_size=img_size, **{**fixed, **overrides})

    return build


def _vitdet(model_name: str, patch: int) -> Callable[..., nn.Module]:
    def build(img_size: int, window_size: int | None = None, global_blocks=(2, 5, 8, 11), **overrides) -> nn.Module:
        import timm

        from vitcnn.zoo.vitdet import upcycle

        vit = timm.create_model(
            model_name, pretrained=False, img_size=img_size, class_token=False, global_pool="avg", **overrides
        )
        if window_size is None:
            window_size = vitdet_window_size(img_size // patch)
        return upcycle(vit, window_size, global_blocks)

    return build


_SPECS = [
    ModelSpec("vit_b16", "vit", 16, True, False, _timm_vit("vit_base_patch16_224"), "timm ViT-B/16, class token"),
    ModelSpec("vitdet_b16", "vit", 16, True, False, _vitdet("vit_base_patch16_224", 16),
              "ViT-B/16 upcycled: window attention, global in blocks 2,5,8,11"),
    ModelSpec("convnext_b", "cnn", 32, False, False, _timm("convnext_base"), "timm ConvNeXt-B"),
    ModelSpec("nfnet_f0", "cnn", 32, False, False, _timm("dm_nfnet_f0"), "timm NFNet-F0 (DeepMind)"),
    ModelSpec("nfnet_f1", "cnn", 32, False, False, _timm("dm_nfnet_f1"), "timm NFNet-F1 (DeepMind)"),
    ModelSpec("vit_t16", "vit", 16, True, True, _timm_vit("vit_tiny_patch16_224"), "timm ViT-Ti/16 (twin of vit_b16)"),
    ModelSpec("vitdet_t16", "vit", 16, True, True, _vitdet("vit_tiny_patch16_224", 16),
              "ViT-Ti/16 upcycled (twin of vitdet_b16)"),
    ModelSpec("convnext_atto", "cnn", 32, False, True, _timm("convnext_atto"), "timm ConvNeXt-atto (twin of convnext_b)"),
    ModelSpec("nfnet_tiny", "cnn", 32, False, True, _timm("test_nfnet"), "timm test NFNet (twin of nfnet_f0/f1)"),
]
REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}


def names() -> list[str]:
    """All registered model names."""
    return list(REGISTRY)


def spec(name: str) -> ModelSpec:
    """The spec of a registered model; unknown names raise a ValueError listing the valid ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(names())}") from None


def check_img_size(name: str, img_size: int) -> None:
    """Raise a ValueError unless `img_size` is a positive multiple of the model's patch size or stride."""
    model = spec(name)
    if not isinstance(img_size, int) or img_size < model.stride or img_size % model.stride:
        raise ValueError(
            f"{name} takes square images whose side is a positive multiple of {model.stride} "
            f"(e.g. {model.stride * 4}, {model.stride * 7}, {model.stride * 16}), got {img_size!r}"
        )


# Residual-branch gains that timm initialises (near) zero so training starts from identity blocks: NFNet's
# `skipinit_gain` (0; or, without skipinit, the last conv's `gain`, 0) and ConvNeXt's layer scale `gamma` (1e-6).
# With those values every block is invisible in the output, so no output check could see a wrong kernel inside
# one. Trained models carry O(1) values.
SLEEPY_GAINS = ("skipinit_gain", "gamma")
ZERO_INIT_GAINS = ("gain",)  # weight-standardised conv gains: woken only where initialised to exactly zero
AWAKE_GAIN = 1.0


def wake_gains(model: nn.Module, value: float = AWAKE_GAIN) -> int:
    """Set every residual-branch gain (SLEEPY_GAINS, and all-zero ZERO_INIT_GAINS) to `value`; values only: the
    op graph and the FLOPs are unchanged. Returns how many parameters were set."""
    import torch

    count = 0
    with torch.no_grad():
        for name, param in model.named_parameters():
            short = name.rsplit(".", 1)[-1]
            if short in SLEEPY_GAINS or (short in ZERO_INIT_GAINS and not param.any()):
                param.fill_(value)
                count += 1
    return count


def build(name: str, img_size: int, wake: bool = True, **overrides) -> nn.Module:
    """Build a registered model for `img_size` x `img_size` inputs, randomly initialised, in eval mode, with every
    residual gain awake (`wake=False` keeps timm's initialisation)."""
    check_img_size(name, img_size)
    model = spec(name).builder(img_size, **overrides).eval()
    if wake:
        wake_gains(model)
    return model
