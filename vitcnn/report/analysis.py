"""The analysis of a report, computed once: per device, its best settings, claims and figure plans.

Both the figures (report/figures.py) and report.md (report/markdown.py) read these, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vitcnn.report.best import Best, Device, Point, best_settings, group_runs
from vitcnn.report.claims import Claim, check_claims
from vitcnn.report.metrics import FigurePlan, plan_figures
from vitcnn.runfile import Run


@dataclass(frozen=True)
class DeviceAnalysis:
    """Everything the report says about one device (fingerprint)."""

    device: Device
    bests: dict[Point, Best]
    claims: list[Claim]
    plans: list[FigurePlan]


def analyse(runs: Iterable[Run]) -> list[DeviceAnalysis]:
    """One DeviceAnalysis per fingerprint, in order of first appearance (runs of one machine are merged)."""
    out = []
    for device in group_runs(runs):
        bests = best_settings(device.results)
        out.append(DeviceAnalysis(device, bests, check_claims(device.results, bests), plan_figures(device, bests)))
    return out
