"""One process: blocks alternating 1 and 2 intra-op threads on the same model and input. If only the 2-thread blocks
swung, the second vCPU's placement on the host would be the cause; if both swing, the whole vCPU's speed moves.

    python results/host-regimes-2026-12-07/threads.py [ROUNDS]
"""
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import numpy as np  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402

from vitcnn.measure import allocator, timing  # noqa: E402

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
print(allocator.apply("fixed"), "| convnext_atto 128 px bs2 eager")
model = timm.create_model("convnext_atto", pretrained=False).eval()
x = torch.randn(2, 3, 128, 128)


def block(threads: int, seconds: float = 0.3) -> float:
    """Median call time (ms) over `seconds` of back-to-back calls with `threads` intra-op threads."""
    torch.set_num_threads(threads)
    return statistics.median(timing.warm_up(lambda: model(x), 1, seconds)) * 1e3


with torch.inference_mode():
    block(2, 1.0)
    block(1, 1.0)
    rows = np.array([(block(1), block(2)) for _ in range(rounds)])
print("1 thread  (ms):", " ".join(f"{a:.1f}" for a in rows[:, 0]))
print("2 threads (ms):", " ".join(f"{b:.1f}" for b in rows[:, 1]))
logs = np.log(rows)
print(f"sd of log block time: 1 thread {logs[:, 0].std(ddof=1):.1%}, 2 threads {logs[:, 1].std(ddof=1):.1%}; "
      f"r(1 thread, 2 threads) = {np.corrcoef(logs.T)[0, 1]:+.2f}; 1/2-thread ratio "
      f"{np.exp(logs[:, 0] - logs[:, 1]).min():.2f}-{np.exp(logs[:, 0] - logs[:, 1]).max():.2f}")
