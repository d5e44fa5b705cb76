"""Each gated run of this experiment against the baseline's saved runs, by the clock: its whole-run shift (median over
the settings of log(new / the saved runs' geometric mean)), the spread of its settings around that shift, the speed
probe's move, and every setting's change; then each setting's medians in the 3 saves and the 5 unchanged runs.

    python results/stored-gate-2026-12-07/shifts.py
"""
import gzip
import json
import math
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RUNS = ["aa-1", "aa-2", "aa-3", "aa-4", "aa-5", "plant-5", "plant-10", "plant-20", "slow-2x"]


def medians(path: Path) -> dict[str, tuple[float, float]]:
    """setting id -> (median s, speed probe ns) of a pytest-benchmark run file."""
    data = json.loads(gzip.open(path).read())
    return {b["extra_info"]["setting_id"]: (b["extra_info"]["median_s"],
                                            b["extra_info"]["host_state"]["speed_probe_ns_median"])
            for b in data["benchmarks"] if b["extra_info"].get("median_s")}


saved = json.loads(gzip.open(HERE / "baseline.json.gz").read())["vitcnn"]["saved_runs"]
ids = sorted(saved[0]["medians"])
logs = np.log([[r["medians"][i]["median_s"] for i in ids] for r in saved])
probes = np.log([[r["medians"][i]["probe_ns"] for i in ids] for r in saved])
shifts = np.median(logs - logs.mean(axis=0), axis=1)
print("saved runs' shifts (median over settings):", " ".join(f"{math.expm1(s) * 100:+.1f}%" for s in shifts))
print(f"{'run':9} {'shift':>7} {'sd around':>9} {'probe':>6}  each setting's change (%; settings sorted by id)")
table = {i: [f"{math.exp(v) * 1e3:.2f}" for v in logs[:, k]] for k, i in enumerate(ids)}
for name in RUNS:
    new = medians(HERE / f"{name}.json.gz")
    change = np.array([math.log(new[i][0]) for i in ids]) - logs.mean(axis=0)
    moved = np.array([math.log(new[i][1]) for i in ids]) - probes.mean(axis=0)
    shift = float(np.median(change))
    print(f"{name:9} {math.expm1(shift) * 100:+6.1f}% {np.std(change - shift, ddof=1) * 100:8.1f}% "
          f"{math.expm1(float(np.median(moved))) * 100:+5.1f}%  "
          + " ".join(f"{round(math.expm1(c) * 100):+d}" for c in change))
    if name.startswith("aa"):
        for i in ids:
            table[i].append(f"{new[i][0] * 1e3:.2f}")
print("\nmedian ms per setting: 3 saves | 5 unchanged gated runs")
for i in ids:
    print(f"{i:40} {' '.join(table[i][:3])} | {' '.join(table[i][3:])}")
