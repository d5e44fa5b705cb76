"""Per worker process of committed `vitcnn ab --json` sessions: its median block time, its minor page faults per
call and its speed probe, so that one can see which of them moves with the slow processes.

    python results/malloc-2026-12-07/faults_vs_process.py SESSION.json[.gz] ...
"""

from __future__ import annotations

import gzip
import json
import statistics
import sys
from pathlib import Path

from scipy import stats


def load(path: Path) -> dict:
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)


def main(paths: list[str]) -> None:
    for path in map(Path, paths):
        for setting in load(path)["settings"]:
            print(f"{path.name}  {setting['id']}  verdict {setting['verdict'].get('labels')}")
            processes: dict[tuple[str, int], list[dict]] = {}
            for block in setting["blocks"]:
                processes.setdefault((block["side"], block["process"]), []).append(block)
            rows = []
            for (side, process), blocks in sorted(processes.items()):
                median_ms = statistics.median(b["median"] for b in blocks) * 1e3
                faults = statistics.median(b["host"]["minor_faults_per_call"] for b in blocks)
                probe_us = statistics.median(b["host"]["speed_probe_ns"] for b in blocks) / 1e3
                rows.append((median_ms, faults, probe_us))
                print(f"  {side}{process}: {median_ms:6.2f} ms per call   {faults:6.0f} faults per call   "
                      f"probe {probe_us:5.0f} us")
            times, faults, probes = zip(*rows)
            if len(set(faults)) > 1:
                print(f"  Spearman rho, process time vs faults per call: {stats.spearmanr(times, faults)[0]:+.2f}; "
                      f"vs probe: {stats.spearmanr(times, probes)[0]:+.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
