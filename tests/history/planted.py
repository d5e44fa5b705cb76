"""A history with a planted regression, built from a real run file: what `history check`, the site and their tests
are checked against.

Commit i of N is a copy of the real run with a fake commit id and time; every setting's samples (and
pytest-benchmark's stats) are multiplied by a per-commit factor exp(N(0, noise)) drawn from `seed`, and from commit
`step_at` on, the settings `planted` match are `step` times slower as well. So the planted change is known exactly:
between commits[step_at - 1] and commits[step_at], those settings' latency, by `step`.

With `count_step`, every setting also records an instruction count, as `--vitcnn-metric instructions` writes it
(`instructions_per_call`): its FLOP count (any fixed number per setting would do; the file has that one) with a
count's small spread, `count_noise`, drawn from its own generator (the latency noise of a seed stays what it was),
and `count_step` times more from `step_at` on for the settings `count_planted` matches (default: `planted`). A
latency step with counts stepping too is the code; with `count_step=1.0` the counts stay flat: the machine.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

REAL_RUN = Path(__file__).resolve().parents[2] / "results" / "cpu-smoke" / "run.json"
SCALED_STATS = ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "ld15iqr", "hd15iqr", "total")


def fake_commit(i: int, tag: str = "planted") -> str:
    return hashlib.sha1(f"{tag}-{i}".encode()).hexdigest()


def planted_runs(out_dir: Path, commits: int = 14, step_at: int = 9, step: float = 1.15, planted: str = "vit_t16",
                 noise: float = 0.02, seed: int = 0, base: Path = REAL_RUN, tag: str = "planted",
                 count_step: float | None = None, count_planted: str | None = None,
                 count_noise: float = 0.001) -> list[Path]:
    """Write `commits` run files to OUT_DIR (one per fake commit, oldest first) and return their paths; settings
    whose id contains `planted` get the step from commit `step_at` on (instruction counts: see the module
    docstring)."""
    data = json.loads(base.read_text())
    rng = np.random.default_rng(seed)
    count_rng = np.random.default_rng([seed, 1])
    count_planted = planted if count_planted is None else count_planted
    start = datetime.fromisoformat(data["commit_info"]["time"])
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(commits):
        run = copy.deepcopy(data)
        when = (start + timedelta(hours=i)).isoformat()
        run["commit_info"] = {**run["commit_info"], "id": fake_commit(i, tag), "time": when, "author_time": when,
                              "dirty": False}
        run["datetime"] = when
        factor = math.exp(rng.normal(0.0, noise))
        for bench in run["benchmarks"]:
            scale = factor * (step if i >= step_at and planted in bench["name"] else 1.0)
            stats = bench["stats"]
            stats["data"] = [s * scale for s in stats["data"]]
            for key in SCALED_STATS:
                if isinstance(stats.get(key), (int, float)):
                    stats[key] *= scale
            if isinstance(stats.get("ops"), (int, float)) and stats["ops"]:
                stats["ops"] /= scale
            info = bench["extra_info"]
            if count_step is not None and info.get("status", "ok") == "ok":
                stepped = count_step if i >= step_at and count_planted in bench["name"] else 1.0
                info["instructions_per_call"] = info["flops"] * stepped * math.exp(count_rng.normal(0.0,
                                                                                                    count_noise))
        path = out_dir / f"{i:02d}-{run['commit_info']['id'][:10]}.json"
        path.write_text(json.dumps(run))
        paths.append(path)
    return paths
