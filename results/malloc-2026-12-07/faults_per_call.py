"""One fresh process: the eager NF-Net test model (timm `test_nfnet`) at 128 px, batch 2, under a malloc policy
(vitcnn/measure/allocator.py: fixed or default); after 20 warm-up calls, 8 blocks of 10 calls: ms per call and
minor page faults per call per block, then the speed probe five times.

    python results/malloc-2026-12-07/faults_per_call.py fixed|default
    (run_faults.sh interleaves the two policies over fresh processes)
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vitcnn.measure import allocator  # noqa: E402
from vitcnn.measure.host import speed_probe_ns  # noqa: E402

condition = allocator.apply(sys.argv[1])
import timm  # noqa: E402
import torch  # noqa: E402

torch.manual_seed(0)
model = timm.create_model("test_nfnet").eval()
x = torch.randn(2, 3, 128, 128)


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


with torch.inference_mode():
    for _ in range(20):
        model(x)
    blocks = []
    for _ in range(8):
        start_faults, start = faults(), time.perf_counter()
        for _ in range(10):
            model(x)
        blocks.append(((time.perf_counter() - start) / 10 * 1e3, (faults() - start_faults) / 10))
print(f"{sys.argv[1]:7s} ms per call {' '.join(f'{ms:5.2f}' for ms, _ in blocks)} | faults per call "
      f"{' '.join(f'{f:4.0f}' for _, f in blocks)} | probe us {' '.join(f'{speed_probe_ns() / 1e3:.0f}' for _ in range(5))}"
      f" | {condition}")
