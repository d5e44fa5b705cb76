"""Do process effects average out when a setting's rounds are spread over more time? Fresh workers per phase:
6 processes set up X, 6 set up Y; `compact` times 12 rounds of X then 12 of Y, `interleaved` alternates X and Y
round by round (each setting's rounds then span twice the time). Between-process variance of each (experiment)."""
import sys, time, tempfile, math
from pathlib import Path
import numpy as np
from vitcnn.ab.sides import Side
from vitcnn.ab.design import calls_per_block
from vitcnn.ab.driver import paired_blocks
from vitcnn.gate import paired
from vitcnn.settings import profile_settings
from vitcnn.workers.checkout import Checkout, PROJECT_ROOT
from vitcnn.workers.process import WorkerProcess

X, Y = sys.argv[1], sys.argv[2]
phases = sys.argv[3].split(",")
P, R = 6, 12
HISTORY = ["vit_t16-64px-bs1-fp32-auto-eager", "vit_t16-128px-bs2-fp32-auto-eager", "convnext_atto-128px-bs1-fp32-nchw-eager",
           "convnext_atto-64px-bs2-fp32-nchw-eager", "nfnet_tiny-64px-bs2-fp32-nchw-eager", "vitdet_t16-64px-bs1-fp32-auto-eager"]
settings = {s.id: s for s in profile_settings("smoke", "cpu")}
side = Side("A", sys.executable, {}, ())
checkout = Checkout(None, PROJECT_ROOT)
logs = Path(tempfile.mkdtemp())
args = ["--vitcnn-device", "cpu", "--vitcnn-profile", "smoke", "--vitcnn-warmup-seconds", "0.5"]
out = []
for phase in phases:
    workers = {n: [WorkerProcess(side, checkout, args, logs / f"{phase}{n}{k}.log") for k in range(P)] for n in "XY"}
    for ws in workers.values():
        for w in ws: w.request("hello")
    if phase.startswith("hist"):  # each worker first runs other settings, as a vitcnn ab worker has
        for hid in HISTORY:
            allw = workers["X"] + workers["Y"]
            for w in allw: w.send("setup", setting=settings[hid].as_dict(), count_flops=False)
            for w in allw: w.receive("setup")
            hp = [w.request("calibrate", seconds=0.05)["per_call_s"] for w in allw]
            hc = calls_per_block(hp, 0.5, R * len(allw))
            for r in range(R):
                for w in allw: w.request("block", calls=hc)
            for w in allw: w.send("finish")
            for w in allw: w.receive("finish")
            for w in allw: w.request("free")
    for n, sid in (("X", X), ("Y", Y)):
        for w in workers[n]: w.send("setup", setting=settings[sid].as_dict(), count_flops=False)
        for w in workers[n]: w.receive("setup")
    per = {n: [w.request("calibrate", seconds=0.05)["per_call_s"] for w in workers[n]] for n in "XY"}
    calls = {n: calls_per_block(per[n], 0.5, R * P) for n in "XY"}
    blocks = {"X": [], "Y": []}
    t0 = time.perf_counter()
    def one_round(n, r):
        for j in range(P):
            k = (j + r) % P
            rep = workers[n][k].request("block", calls=calls[n])
            blocks[n].append({"side": "A", "process": k, "round": r, "median": paired.block_median(rep["samples"]),
                              "host": rep.get("host")})
    order = [(n, r) for n in "XY" for r in range(R)] if phase != "interleaved" else [(n, r) for r in range(R) for n in "XY"]
    span = {}
    for n, r in order:
        s = time.perf_counter(); one_round(n, r); e = time.perf_counter()
        span.setdefault(n, [s, e]); span[n][1] = e
    for n in "XY":
        # the fit wants two sides: treat the 6 processes as 3 vs 3 (an A/A split), variance components pool both
        bl = [dict(b, side="A" if b["process"] < P // 2 else "B") for b in blocks[n]]
        v = paired.variance_components(paired_blocks(bl))
        share = v.between / (v.between + v.within) if v.between + v.within else 0
        eff = {}
        for b in blocks[n]: eff.setdefault(b["process"], []).append(math.log(b["median"]))
        means = [1e3 * math.exp(np.mean(v_)) for v_ in eff.values()]
        print(f"{phase:11s} {n} {(X if n == 'X' else Y):40s} span {span[n][1]-span[n][0]:5.1f} s  between sd "
              f"{100*math.sqrt(v.between):4.1f}%  share {100*share:3.0f}%  process ms {' '.join(f'{m:.2f}' for m in means)}", flush=True)
    for ws in workers.values():
        for w in ws: w.close()
checkout.close()
