"""One fresh process: the eager NF-Net test model at 128 px, batch 2 (malloc thresholds fixed), timed in 8 blocks of
10 calls; around every block the core speed probe (vitcnn/measure/host.py) and three memory probes: a numpy sum over
a buffer that fits L2 (512 KiB), one that fits L3 (8 MiB) and one that does not (128 MiB). Prints one JSON line:
the medians over the blocks. Which probe moves with the process's speed, when processes differ?

    python results/memory-probe-2026-12-07/process.py     (run.sh: 24 processes, one after another)
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vitcnn.measure import allocator  # noqa: E402
from vitcnn.measure.host import speed_probe_ns  # noqa: E402

allocator.apply("fixed")
import numpy as np  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402

BUFFERS = {"l2_us": np.ones(128 << 10, dtype=np.float32), "l3_us": np.ones(2 << 20, dtype=np.float32),
           "dram_us": np.ones(32 << 20, dtype=np.float32)}


def memory_probe(buffer: np.ndarray) -> float:
    """Microseconds per 64 MiB read from `buffer` (the best of 3)."""
    passes = max(1, (64 << 20) // buffer.nbytes)
    best = None
    for _ in range(3):
        start = time.perf_counter_ns()
        for _ in range(passes):
            buffer.sum()
        elapsed = (time.perf_counter_ns() - start) / 1e3
        best = elapsed if best is None else min(best, elapsed)
    return best


torch.manual_seed(0)
model = timm.create_model("test_nfnet").eval()
x = torch.randn(2, 3, 128, 128)
rows = []
with torch.inference_mode():
    for _ in range(20):
        model(x)
    for _ in range(8):
        probes = {"core_us": speed_probe_ns() / 1e3, **{k: memory_probe(b) for k, b in BUFFERS.items()}}
        start = time.perf_counter()
        for _ in range(10):
            model(x)
        rows.append({"model_ms": (time.perf_counter() - start) / 10 * 1e3, **probes})
print(json.dumps({k: statistics.median(r[k] for r in rows) for k in rows[0]}))
