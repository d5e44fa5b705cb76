"""Exploration (2026-12-06, issue 37): does a reference timed around each block predict the block's speed?

    PYTHONPATH=. python results/machine-speed-2026-12-06/explore_blocks.py MODEL RES BLOCKS [CALLS]

One process, one eager setting at batch 2: BLOCKS blocks of CALLS calls, each with two references before and after
it: six 384x384 fp32 matmuls (`probe`) and a pure-Python loop of 20,000 additions (`spin`). Writes
explore/MODEL-RES.json and prints each reference's correlation with the block time (log) and the block's spread
once the reference's part is regressed out. Run alone on the machine."""
import sys, time, json, math
import torch
from vitcnn.zoo import models
torch.manual_seed(0)
name, res, nblocks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
calls = int(sys.argv[4]) if len(sys.argv) > 4 else 10
m = models.build(name, res).eval()
x = torch.randn(2, 3, res, res)
a = torch.randn(384, 384); b = torch.randn(384, 384)
def probe():
    t = time.perf_counter_ns()
    for _ in range(6):
        torch.mm(a, b)
    return time.perf_counter_ns() - t
def spin():
    t = time.perf_counter_ns(); s = 0
    for i in range(20000): s += i
    return time.perf_counter_ns() - t
with torch.inference_mode():
    for _ in range(10): m(x); probe()
    rows = []
    for k in range(nblocks):
        p1 = probe(); s1 = spin()
        t = time.perf_counter_ns()
        for _ in range(calls): m(x)
        blk = (time.perf_counter_ns() - t) / calls
        p2 = probe(); s2 = spin()
        rows.append(dict(block=blk, p1=p1, p2=p2, s1=s1, s2=s2))
json.dump(rows, open(f"results/machine-speed-2026-12-06/explore/{name}-{res}.json", "w"))
import numpy as np
from scipy import stats
B = np.log([r["block"] for r in rows]); P = np.log([(r["p1"]*r["p2"])**.5 for r in rows]); S = np.log([(r["s1"]*r["s2"])**.5 for r in rows])
print(name, res, "block sd %.1f%%" % (100*B.std()), "probe sd %.1f%%" % (100*P.std()), "spin sd %.1f%%" % (100*S.std()))
for lab, C in (("probe", P), ("spin", S)):
    rho = stats.spearmanr(B, C)[0]; r = np.corrcoef(B, C)[0,1]
    slope = np.polyfit(C, B, 1)[0]; adj = B - slope*(C - C.mean())
    print(f"  {lab}: spearman {rho:+.2f} pearson {r:+.2f} slope {slope:.2f} adjusted sd {100*adj.std():.1f}%")
