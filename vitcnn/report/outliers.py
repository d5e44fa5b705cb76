"""Settings whose activation memory is far from their peers', and the ops that held it at the peak.

Peers are the other models at the same resolution, batch, precision and task on the same device. A peak several
times the smallest peer's is either the model (global attention at high resolution) or the machine (a kernel
library's workspace: on an AMX CPU, bf16 ViT-B/16 at 1024 px held 1,554 MiB per call where its fp32 call held 109
MiB); the ops at the peak (measure/memory.py, `activation_peak_holders`) tell which.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vitcnn.runfile import Result

OUTLIER_RATIO = 3.0  # activation peak at least this many times the smallest peer's


@dataclass(frozen=True)
class MemoryOutlier:
    result: Result
    peer: Result  # the peer with the smallest activation peak

    @property
    def ratio(self) -> float:
        return self.result.activation_peak_bytes / self.peer.activation_peak_bytes

    @property
    def holders(self) -> list[dict] | None:
        """The ops holding the peak, most bytes first; None for a run from before they were recorded."""
        return self.result.get("activation_peak_holders")


def _peak(result: Result) -> int | None:
    return result.activation_peak_bytes if result.status == "ok" else None


def memory_outliers(results: Mapping[str, Result], ratio: float = OUTLIER_RATIO) -> list[MemoryOutlier]:
    """Every ok setting whose activation peak is at least `ratio` times that of the smallest peer."""
    groups: dict[tuple, list[Result]] = {}
    for result in results.values():
        if _peak(result):
            s = result.setting
            groups.setdefault((s.resolution, s.batch, s.precision, s.task), []).append(result)
    found = []
    for members in groups.values():
        for result in members:
            peers = [p for p in members if p.setting.model != result.setting.model]
            if peers:
                peer = min(peers, key=_peak)
                if _peak(result) >= ratio * _peak(peer):
                    found.append(MemoryOutlier(result, peer))
    return sorted(found, key=lambda o: (-o.ratio, o.result.id))
