"""The analysis of a report, computed once: per device, its best settings, claims and figure plans.

Both the figures (report/figures.py) and report.md (report/markdown.py) read these, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from vitcnn.report.best import Best, Device, Point, best_settings, group_runs
from vitcnn.report.claims import Claim, check_claims
from vitcnn.report.metrics import FigurePlan, plan_figures
from vitcnn.runfile import Run


@dataclass(frozen=True)
class DeviceAnalysis:
    """Everything the report says about one device (fingerprint)."""

    device: Device
    bests: dict[Point, Best]  # inference
    claims: list[Claim]
    plans: list[FigurePlan]
    train_bests: dict[Point, Best] = field(default_factory=dict)  # training steps

    def bests_of(self, task: str) -> dict[Point, Best]:
        return self.train_bests if task == "train" else self.bests


def analyse(runs: Iterable[Run]) -> list[DeviceAnalysis]:
    """One DeviceAnalysis per fingerprint, in order of first appearance (runs of one machine are merged).
    Inference and training steps compete only with their own kind: each task has its own best settings."""
    out = []
    for device in group_runs(runs):
        infer = [r for r in device.results.values() if r.setting.task == "infer"]
        train = [r for r in device.results.values() if r.setting.task == "train"]
        bests, train_bests = best_settings(infer), best_settings(train)
        plans = plan_figures(device, bests) + plan_figures(device, train_bests, "train")
        out.append(DeviceAnalysis(device, bests, check_claims(infer, bests, train_bests), plans, train_bests))
    return out
