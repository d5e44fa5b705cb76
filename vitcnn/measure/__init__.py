"""Measure one Setting: precision flags, FLOPs, SDPA, compiling, references, timing, training steps, memory, peaks.

Second stage of the data flow. `pipeline.py` composes the others, one module per concern; `measure()` runs a
setting end to end (what the pytest plugin calls) and `prepare()` returns the `Prepared` stages that `vitcnn ab`
times in blocks. Both are importable from here (loaded on first use, so that a light module of this package, such
as instructions.py, imports without torch):

    from vitcnn.measure import MeasureOptions, measure
    result = measure(setting, "cuda", options=MeasureOptions())
"""

from __future__ import annotations

import importlib

_NAMES = {"MeasureOptions": "vitcnn.measure.options", "Result": "vitcnn.result", "Prepared": "vitcnn.measure.pipeline",
          "measure": "vitcnn.measure.pipeline", "prepare": "vitcnn.measure.pipeline"}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
