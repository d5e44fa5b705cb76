"""Between-process variance of log block time (vitcnn.gate.paired.variance_components, by the clock) per setting,
in smoke A/A sessions of long-lived workers against sessions of fresh forks; the settings that showed lasting
process offsets (issue 37) first, then the median over all 24.

    python results/process-history-2026-12-07/between.py LABEL=GLOB [LABEL=GLOB ...]
"""

from __future__ import annotations

import glob
import gzip
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vitcnn.ab.driver import paired_blocks  # noqa: E402
from vitcnn.gate import paired  # noqa: E402

OFFSET = ("nfnet_tiny-128px-bs2-fp32-nchw-eager", "nfnet_tiny-128px-bs1-fp32-nchw-eager",
          "vitdet_t16-64px-bs1-fp32-auto-eager", "vitdet_t16-64px-bs2-fp32-auto-eager",
          "vit_t16-128px-bs2-fp32-auto-eager", "vitdet_t16-128px-bs2-fp32-auto-eager",
          "convnext_atto-128px-bs2-fp32-nchw-eager")


def load(path: str) -> dict:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return json.load(f)


def between(groups: dict[str, list[str]]) -> None:
    rows: dict[str, dict[str, list[float]]] = {}
    shares: dict[str, dict[str, list[float]]] = {}
    for label, paths in groups.items():
        for path in paths:
            for s in load(path)["settings"]:
                if s["blocks"]:
                    v = paired.variance_components(paired_blocks(s["blocks"]))
                    rows.setdefault(s["id"], {}).setdefault(label, []).append(v.between)
                    shares.setdefault(label, {}).setdefault(s["id"], []).append(v.share_between)
    labels = list(groups)
    print("mean between-process variance of log time per setting, as a process sd (%), and the sessions' count")
    print(f"{'setting':42s} " + " ".join(f"{label:>16s}" for label in labels) + "   ratio of variances")
    ratios = []
    for sid in [*OFFSET, *sorted(set(rows) - set(OFFSET))]:
        cells = [rows.get(sid, {}).get(label, []) for label in labels]
        means = [statistics.fmean(c) if c else math.nan for c in cells]
        ratio = means[0] / means[1] if len(means) == 2 and means[1] > 0 else math.inf
        ratios.append((sid, ratio, means))
        mark = "*" if sid in OFFSET else " "
        print(f"{mark}{sid:41s} " + " ".join(f"{100 * math.sqrt(m):9.2f}% ({len(c)})" for m, c in zip(means, cells))
              + f"   {ratio:6.1f}x")
    for name, chosen in (("offset settings (*)", OFFSET), ("all settings", [r[0] for r in ratios])):
        pooled = [sum(r[2][i] for r in ratios if r[0] in chosen) / len(chosen) for i in range(len(labels))]
        sds = ", ".join(f"{label} {100 * math.sqrt(p):.2f}%" for label, p in zip(labels, pooled))
        print(f"{name}: pooled process sd {sds}"
              + (f"; variance ratio {pooled[0] / pooled[1]:.1f}x" if len(pooled) == 2 and pooled[1] else ""))
        mean_share = [statistics.fmean(x for sid in chosen for x in shares[label].get(sid, [])) for label in labels]
        print(f"{name}: mean share of block variance between processes " +
              ", ".join(f"{label} {100 * m:.1f}%" for label, m in zip(labels, mean_share)))


if __name__ == "__main__":
    between({arg.split("=", 1)[0]: sorted(glob.glob(arg.split("=", 1)[1])) for arg in sys.argv[1:]})
