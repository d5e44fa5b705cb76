"""One setting's outcome: the record the measuring code returns, the A/B workers report and every reader gets.

`measure()` returns it, a worker's reply becomes it, and a run file's entries are parsed back into it
(vitcnn/runfile.py), so the pytest path, `vitcnn ab`, instruction counting, the gate and the report share one
shape. The median, images/s, TFLOP/s and MFU are derived here, once, from the raw samples and the FLOP count, so
no two places can disagree about them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from vitcnn.settings import Setting

STATUSES = ("ok", "oom", "error", "skipped")


@dataclass
class Result:
    """A setting, its status ("ok", "oom", "error", "skipped") and reason, and when it ran its raw samples and
    measured numbers.

    `info` is what the run file keeps as the benchmark's extra_info (docs/reference/run-json.md lists its fields);
    `stats` is pytest-benchmark's statistics of a result read from a file. `fatal` (a sticky CUDA error that
    leaves the device unusable) and `upstream` (the known torch bug behind an error, measure/failures.py) are said
    by the process that measured, never stored.
    """

    setting: Setting
    status: str
    reason: str | None = None
    samples: list[float] = field(default_factory=list)  # seconds per call, as timed
    info: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    fatal: bool = False
    upstream: str | None = None

    @property
    def id(self) -> str:
        return self.setting.id

    @property
    def median_s(self) -> float | None:
        """Median seconds per call: of the raw samples when kept, else pytest-benchmark's median."""
        if self.samples:
            return statistics.median(self.samples)
        return self.stats.get("median")

    iqr_s = property(lambda self: self.stats.get("iqr"), doc="Interquartile range of the seconds per call.")

    @property
    def images_per_s(self) -> float | None:
        median = self.median_s
        return self.setting.batch / median if median else None

    flops = property(lambda self: self.info.get("flops"),
                     doc="FLOPs of one call (whole batch); may be an undercount when `flops_error` is set.")
    flops_error = property(lambda self: self.info.get("flops_error"),
                           doc="Why the FLOP count failed or missed an op; FLOP-based numbers are then suspect.")
    activation_peak_bytes = property(lambda self: self.info.get("activation_peak_bytes"),
                                     doc="Activation peak in bytes; None where not measured.")

    @property
    def tflops_per_s(self) -> float | None:
        median = self.median_s
        return self.flops / median / 1e12 if median and self.flops else None

    def mfu(self, peak: str) -> float | None:
        """Model FLOP utilisation (a fraction) against `peak`: "spec" (datasheet) or "matmul" (measured)."""
        tflops, peak_tflops = self.tflops_per_s, self.info.get(f"peak_tflops_{peak}")
        return tflops / peak_tflops if tflops and peak_tflops else None

    def get(self, key: str, default=None):
        """A measured number from info (None when not measured)."""
        return self.info.get(key, default)
