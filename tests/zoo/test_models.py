"""The model registry: every model builds and runs on CPU; window defaults; clear errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from vitcnn.zoo import models
from vitcnn.zoo.vitdet import GridWindowAttention


@pytest.mark.parametrize("name", models.names())
def test_every_model_builds_and_runs_on_cpu(name):
    spec = models.spec(name)
    size = spec.stride * 4
    model = models.build(name, size)
    assert not model.training
    with torch.inference_mode():
        out = model(torch.randn(1, 3, size, size))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()
    assert spec.family in ("vit", "cnn")
    assert spec.has_attention == (spec.family == "vit")


def test_registry_has_benchmarked_models_and_twins():
    assert {"vit_b16", "vitdet_b16", "convnext_b", "nfnet_f0", "nfnet_f1"} <= set(models.names())
    assert {"vit_t16", "vitdet_t16", "convnext_atto", "nfnet_tiny"} <= {n for n in models.names() if models.spec(n).tiny}


@pytest.mark.parametrize("res, window", [(224, 14), (1024, 16), (512, 16), (448, 14), (384, 12), (128, 8)])
def test_vitdet_default_window(res, window):
    assert models.vitdet_window_size(res // 16) == window


@given(st.integers(1, 200))
def test_default_window_divides_the_grid(grid):
    window = models.vitdet_window_size(grid)
    assert grid % window == 0


def test_vitdet_window_is_overridable_and_global_blocks_stay_global():
    model = models.build("vitdet_t16", 96, window_size=3)
    windowed = [i for i, b in enumerate(model.blocks) if isinstance(b.attn, GridWindowAttention)]
    assert windowed == [0, 1, 3, 4, 6, 7, 9, 10]
    assert model.blocks[0].attn.window_size == 3


@pytest.mark.parametrize(
    "name, size, message",
    [("resnet50", 224, "vit_b16"), ("vit_b16", 100, "multiple of 16"), ("convnext_b", 0, "multiple of 32"),
     ("nfnet_f0", 240, "multiple of 32")],
)
def test_bad_names_and_sizes_raise(name, size, message):
    with pytest.raises(ValueError, match=message):
        models.build(name, size)


def _blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The residual blocks (timm's ConvNeXtBlock, NormFreeBlock)."""
    return [m for m in model.modules() if type(m).__name__.endswith("Block")]


GAINS = (*models.SLEEPY_GAINS, *models.ZERO_INIT_GAINS)


def _output_change_per_block(model: torch.nn.Module, x: torch.Tensor) -> list[float]:
    """Relative output change when the residual branch of one block (weights, not its gain, not the shortcut's
    downsampling conv) gets noise, for each block."""
    with torch.no_grad():
        base = model(x)
        changes = []
        for block in _blocks(model):
            saved = {n: p.clone() for n, p in block.named_parameters()}
            for name, p in block.named_parameters():
                if name.rsplit(".", 1)[-1] not in GAINS and not name.startswith(("downsample", "shortcut")):
                    p.add_(torch.randn_like(p) * (p.std() if p.numel() > 1 else 1.0) * 0.5)
            changes.append(((model(x) - base).abs().max() / base.abs().max()).item())
            for name, p in block.named_parameters():
                p.copy_(saved[name])
    return changes


@pytest.mark.parametrize("name", ["convnext_atto", "nfnet_tiny"])
def test_awake_gains_let_the_output_see_every_block(name):
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    asleep = _output_change_per_block(models.build(name, 64, wake=False), x)
    awake = _output_change_per_block(models.build(name, 64), x)
    assert len(awake) >= 4
    assert min(asleep) < 1e-4  # timm's init: a broken block is invisible to any output check
    assert min(awake) > 1e-2  # every block now moves the output far beyond the fp32 check tolerance (1e-3)


def test_waking_changes_values_not_the_graph():
    model = models.build("convnext_atto", 64, wake=False)
    shapes = {n: p.shape for n, p in model.named_parameters()}
    assert models.wake_gains(model) == len(_blocks(model)) > 0
    assert {n: p.shape for n, p in model.named_parameters()} == shapes
    assert all(p.eq(models.AWAKE_GAIN).all() for n, p in model.named_parameters() if n.endswith(".gamma"))
