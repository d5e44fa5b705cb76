"""One process, the same model and input throughout: an eager setting's block medians over time. A jump here is
the machine, not the process: nothing in the process changed between blocks.

    python results/host-regimes-2026-12-07/series.py [BLOCKS] [MODEL RES BATCH]
"""
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import timm  # noqa: E402
import torch  # noqa: E402

from vitcnn.measure import allocator, timing  # noqa: E402

blocks = int(sys.argv[1]) if len(sys.argv) > 1 else 40
name, res, batch = (sys.argv[2], int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else ("convnext_atto", 128, 2)
print(allocator.apply("fixed"), f"| {torch.get_num_threads()} threads | {name} {res} px bs{batch} eager")
model = timm.create_model(name, pretrained=False).eval()
x = torch.randn(batch, 3, res, res)


def block(seconds: float = 0.4) -> float:
    """Median call time (ms) over `seconds` of back-to-back calls (the suite's own timing loop)."""
    return statistics.median(timing.warm_up(lambda: model(x), 1, seconds)) * 1e3


with torch.inference_mode():
    block(1.0)
    print("block medians (ms, 0.4 s each):", " ".join(f"{block():.1f}" for _ in range(blocks)))
