"""Test-only hook (`-p tests.plant_matmul`, for pytest or a `vitcnn ab` side): a planted compute regression.

VITCNN_PLANT_MATMUL=1 -> every transformer / ConvNeXt / NF-Net block of every model ends with one extra
                         channels x channels matmul (6 for NF-Net) over its output tokens (added to the output,
                         with a zero weight, so the numbers do not change): about 8-11% more FLOPs, counted by the
                         FLOP counter too, so the measured ratio can be set against the FLOP increase.
VITCNN_PLANT_FRACTION=f -> only a fraction f of each model's blocks, spread evenly (0.5: about 4-6% more FLOPs).
VITCNN_PLANT_REPEAT=k   -> k times as many extra matmuls per chosen block (10: about twice the FLOPs), for tests
                           that need a slowdown far beyond a noisy machine's spread.
A model change, not a product feature: it exists to check that `vitcnn ab` detects a ~10% slowdown.
"""

from __future__ import annotations

import dataclasses
import math
import os

import torch

from vitcnn.zoo import models

# timm's block classes in the benchmarked models -> extra matmuls per block for about +10% FLOPs (an NF-Net block's
# own work is mostly 3x3 convolutions, so one channels x channels matmul adds only ~1.6% there)
BLOCKS = {"Block": 1, "ConvNeXtBlock": 1, "NormFreeBlock": 6}


def _extra_matmul(module: torch.nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
    tokens = output if output.dim() == 3 else output.transpose(1, -1)  # (B, N, C) or (B, W, H, C)
    extra = sum(tokens @ module.planted_weight for _ in range(BLOCKS[type(module).__name__] * module.planted_repeat))
    return output + (extra if output.dim() == 3 else extra.transpose(1, -1))


def chosen(index: int, fraction: float) -> bool:
    """Whether block `index` gets the matmul when a `fraction` of the blocks do, spread evenly (1.0: all)."""
    return math.floor((index + 1) * fraction) > math.floor(index * fraction)


def plant(model: torch.nn.Module, fraction: float = 1.0, repeat: int = 1) -> torch.nn.Module:
    """Add the extra matmul (`repeat` times) to a `fraction` of the blocks of `model` (in place); returns it."""
    blocks = [module for module in model.modules() if type(module).__name__ in BLOCKS]
    for index, module in enumerate(blocks):
        if chosen(index, fraction):
            channels = next(p for name, p in module.named_parameters() if p.dim() >= 1).shape[0]
            out_channels = _output_channels(module, channels)
            module.register_buffer("planted_weight", torch.zeros(out_channels, out_channels))
            module.planted_repeat = repeat
            module.register_forward_hook(_extra_matmul)
    return model


def _output_channels(module: torch.nn.Module, fallback: int) -> int:
    """Channels of the block's output: the last Linear/Conv's output features."""
    last = None
    for sub in module.modules():
        if isinstance(sub, torch.nn.Linear):
            last = sub.out_features
        elif isinstance(sub, torch.nn.Conv2d):
            last = sub.out_channels
    return last or fallback


def pytest_configure(config) -> None:
    if os.environ.get("VITCNN_PLANT_MATMUL") != "1":
        return
    fraction = float(os.environ.get("VITCNN_PLANT_FRACTION", "1"))
    repeat = int(os.environ.get("VITCNN_PLANT_REPEAT", "1"))
    for name in models.names():
        spec = models.spec(name)

        def builder(img_size, _build=spec.builder, **overrides):
            return plant(_build(img_size, **overrides), fraction, repeat)

        models.REGISTRY[name] = dataclasses.replace(spec, builder=builder)
