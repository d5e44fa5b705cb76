"""How much of a process effect lasts, and how much is its blocks' noise that more rounds would average out.

    python results/ab-design-2026-12-07/process_halves.py [SESSION.json.gz ...]

Per setting that ran 16 rounds in its first three processes per side (a sequential session's second stage): the
process effects (vitcnn.gate.paired.process_effects, each side's mean removed) of rounds 0-7 and of rounds 8-15,
in machine time (as the driver takes them) and by the clock. Their covariance over the processes estimates the
lasting part of an 8-round effect's variance; the rest is the blocks' own noise. Pooled over all settings (sum of
covariances / sum of variances) and as the median ratio per setting. Default: this directory's A/A and planted
sessions."""
import gzip
import json
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from vitcnn.ab.driver import paired_blocks  # noqa: E402
from vitcnn.gate import paired  # noqa: E402

HALF = 8  # rounds per half


def centred(effects: dict, side: str) -> list[float]:
    mine = sorted(k for k in effects if k[0] == side)
    mean = statistics.fmean(effects[k] for k in mine)
    return [effects[k] - mean for k in mine]


def main(paths: list[str]) -> None:
    found = {"machine": ([], []), "clock": ([], [])}  # covariances, variances
    for path in paths:
        for entry in json.loads(gzip.open(path).read())["settings"]:
            if entry["rounds"] < 2 * HALF:
                continue
            blocks = paired_blocks([b for b in entry["blocks"] if b.get("median")])
            for name in found:
                chosen = blocks
                if name == "machine" and (fit := paired.machine_time(blocks)) is not None:
                    chosen = [b._replace(median=b.median / b.probe ** fit[1], probe=None) for b in blocks]
                chosen = [b for b in chosen if b.process < 3]
                first = paired.process_effects([b for b in chosen if b.round < HALF])
                second = paired.process_effects([b for b in chosen if HALF <= b.round < 2 * HALF])
                x = np.array(centred(first, "A") + centred(first, "B"))
                y = np.array(centred(second, "A") + centred(second, "B"))
                dof = len(x) - 2
                found[name][0].append(float(x @ y) / dof)
                found[name][1].append(float(x @ x + y @ y) / 2 / dof)
    for name, (covariances, variances) in found.items():
        c, v = np.array(covariances), np.array(variances)
        print(f"{name:8} settings {len(c)}: lasting share of an 8-round process effect's variance, pooled "
              f"{c.sum() / v.sum():.3f}, median per setting {np.median(c / v):.3f}")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    main(sys.argv[1:] or [str(p) for p in sorted(here.glob("aa-*.json.gz")) + sorted(here.glob("plant*.json.gz"))])
