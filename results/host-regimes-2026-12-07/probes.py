"""One process: around every block of the model, three candidate machine probes (each the geometric mean of its
value before and after the block): a 32 MiB tensor copy (memory bandwidth), a 1 MiB copy (L2-resident) and a
pure-Python loop (core speed, the suite's speed probe). Which one follows the block's speed (r of logs)?

    python results/host-regimes-2026-12-07/probes.py [BLOCKS] [MODEL RES BATCH]
"""
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import numpy as np  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402

from vitcnn.measure import allocator, timing  # noqa: E402

blocks = int(sys.argv[1]) if len(sys.argv) > 1 else 50
name, res, batch = (sys.argv[2], int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else ("convnext_atto", 128, 2)
allocator.apply("fixed")
model = timm.create_model(name, pretrained=False).eval()
x = torch.randn(batch, 3, res, res)
big, big_out = torch.randn(8 << 20), torch.empty(8 << 20)
small, small_out = torch.randn(256 << 10), torch.empty(256 << 10)


def median_s(f, n: int) -> float:
    """Median seconds of `n` calls (only logs of it are used: r and sd do not depend on the unit)."""
    return statistics.median(timing.plain_timer(f, n))


def loop() -> None:
    total = 0
    for i in range(20000):
        total += i


PROBES = {"copy 32 MiB": lambda: median_s(lambda: big_out.copy_(big), 5),
          "copy 1 MiB": lambda: median_s(lambda: small_out.copy_(small), 20),
          "python loop": lambda: median_s(loop, 5)}


def block(seconds: float = 0.3) -> float:
    """Median call time (s) over `seconds` of back-to-back calls (the suite's own timing loop)."""
    return statistics.median(timing.warm_up(lambda: model(x), 1, seconds))


rows = []
with torch.inference_mode():
    block(1.0)
    for _ in range(blocks):
        before = [p() for p in PROBES.values()]
        b = block()
        after = [p() for p in PROBES.values()]
        rows.append([b] + [(u * v) ** 0.5 for u, v in zip(before, after)])
logs = np.log(np.array(rows))
print(f"{name} {res} px bs{batch} eager, {blocks} blocks of 0.3 s: block {np.exp(logs[:, 0]).min() * 1e3:.1f}-"
      f"{np.exp(logs[:, 0]).max() * 1e3:.1f} ms (sd of log {logs[:, 0].std(ddof=1):.1%})")
for k, label in enumerate(PROBES, start=1):
    print(f"  {label:12} r = {np.corrcoef(logs[:, 0], logs[:, k])[0, 1]:+.2f}, its own sd {logs[:, k].std(ddof=1):.1%}")
