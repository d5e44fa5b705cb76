"""Exploration (2026-12-06, issue 37): do whole runs move with the machine's speed?

    for k in 1 2 3 4 5; do PYTHONPATH=. python results/machine-speed-2026-12-06/explore_runs.py \
        results/machine-speed-2026-12-06/explore/run$k.json; done

One process = one run: six eager settings (NF-Net test model, ViTDet-T/16, ViT-T/16 at 64 and 128 px, batch 2) in
sequence, each 40 blocks of ~30 ms with a pure-Python loop of 20,000 additions timed before and after every block.
Writes each setting's median block time and median reference (the run shifts of both are compared in
docs/results.md, "The machine speed probe"). Run alone on the machine."""
import sys, time, json, statistics
import torch
from vitcnn.zoo import models
out = []
def spin():
    t = time.perf_counter_ns(); s = 0
    for i in range(20000): s += i
    return time.perf_counter_ns() - t
with torch.inference_mode():
    for name in ("nfnet_tiny", "vit_t16", "vitdet_t16"):
        for res in (64, 128):
            m = models.build(name, res).eval(); x = torch.randn(2, 3, res, res)
            for _ in range(5): m(x)
            t = time.perf_counter(); m(x); per = time.perf_counter() - t
            calls = max(1, int(0.03 / per))
            blocks, probes = [], []
            for k in range(40):
                p1 = spin(); t = time.perf_counter_ns()
                for _ in range(calls): m(x)
                blocks.append((time.perf_counter_ns() - t) / calls); probes.append((p1 * spin()) ** .5)
            out.append(dict(id=f"{name}-{res}", block=statistics.median(blocks), probe=statistics.median(probes), blocks=blocks, probes=probes))
json.dump(out, open(sys.argv[1], "w"))
