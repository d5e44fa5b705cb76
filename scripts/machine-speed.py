"""Does the machine's own speed explain how far whole runs moved? Run shifts against speed-probe shifts.

    python scripts/machine-speed.py RUN.json [RUN.json ...]

Each file is a pytest-benchmark run file of vitcnn (or a baseline; plain or gzipped), all of one profile on one
machine. Per run: its shift, the median over the settings every run has of log(median) minus that setting's mean
over all the runs; and the machine's shift, its median log speed probe (vitcnn/measure/host.py) minus the mean over
the runs. Then the Pearson correlation of the two, the spread of the run shifts, and their spread once the
machine's shift is taken out (what the stored gate does on a CPU, vitcnn/gate/stored.py). Not a test: a reading.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitcnn.gate.stored import machine_level, probe_ns  # noqa: E402
from vitcnn.runfile import load_run  # noqa: E402


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    runs = [load_run(path) for path in argv]
    ok = [{i: r for i, r in run.results.items() if r.status == "ok" and r.median_s and not r.get("contended")}
          for run in runs]
    ids = sorted(set.intersection(*(set(o) for o in ok)))
    if len(ids) < 3:
        print(f"only {len(ids)} setting(s) in every run: nothing to compare")
        return 2
    logs = np.array([[math.log(o[i].median_s) for i in ids] for o in ok])
    levels = [machine_level([probe_ns(o[i]) for i in ids]) for o in ok]
    if None in levels:
        missing = [argv[k] for k, v in enumerate(levels) if v is None]
        print(f"no speed probe in: {', '.join(missing)} (runs from before it was recorded)")
        return 2
    shifts = np.median(logs - logs.mean(axis=0), axis=1)
    machine = np.array(levels) - np.mean(levels)
    print(f"{len(runs)} runs, {len(ids)} settings in every run")
    print(f"{'run':48} {'shift':>8} {'machine':>8} {'beyond':>8}")
    for path, s, m in zip(argv, shifts, machine):
        print(f"{Path(path).name:48} {math.expm1(s):+8.1%} {math.expm1(m):+8.1%} {math.expm1(s - m):+8.1%}")
    r = float(np.corrcoef(shifts, machine)[0, 1])
    print(f"Pearson r(shift, machine) = {r:+.2f}; spread of the run shifts (sd) {np.std(shifts, ddof=1):.1%}, "
          f"beyond the machine's {np.std(shifts - machine, ddof=1):.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
