"""The models: window attention, ViTDet upcycling, and the registry of benchmarked backbones and their tiny twins.

First stage of the data flow (zoo -> measure -> run file -> gate / report). What users import lives here:

    from vitcnn.zoo import WindowAttention, window_partition, window_unpartition, upcycle
    from vitcnn.zoo import models; models.build("vitdet_b16", img_size=1024)

The registry (`models`) is light; the torch modules (window attention, upcycling) load when first asked for, so
that choosing settings, reading runs and gating import no torch.
"""

from __future__ import annotations

import importlib

from vitcnn.zoo import models

_TORCH_NAMES = {"upcycle": "vitcnn.zoo.vitdet", "WindowAttention": "vitcnn.zoo.window",
                "window_partition": "vitcnn.zoo.window", "window_unpartition": "vitcnn.zoo.window"}

__all__ = ["WindowAttention", "models", "upcycle", "window_partition", "window_unpartition"]


def __getattr__(name: str):
    """`from vitcnn.zoo import upcycle` and friends: imported from their module on first use (PEP 562)."""
    if name in _TORCH_NAMES:
        return getattr(importlib.import_module(_TORCH_NAMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
