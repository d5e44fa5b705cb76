"""The model registry: every model builds and runs on CPU; window defaults; clear errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from vitcnn import models
from vitcnn.vitdet import GridWindowAttention


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
