"""Measure one Setting: precision flags, FLOPs, SDPA, compiling, references, timing, training steps, memory, peaks.

Second stage of the data flow. `pipeline.py` composes the others, one module per concern; `measure()` runs a
setting end to end (what the pytest plugin calls) and `prepare()` returns the `Prepared` stages that `vitcnn ab`
times in blocks. Both are importable from here:

    from vitcnn.measure import MeasureOptions, measure
    outcome = measure(setting, "cuda", options=MeasureOptions())
"""

from vitcnn.measure.pipeline import MeasureOptions, Outcome, Prepared, measure, prepare

__all__ = ["MeasureOptions", "Outcome", "Prepared", "measure", "prepare"]
