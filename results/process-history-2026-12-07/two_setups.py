"""Two setups of one setting alive in one process, timed interleaved (ABBA...): do setups differ persistently
within a process? J fresh pairs (experiment only)."""
import sys, math, statistics
import numpy as np
from vitcnn.measure import allocator, pipeline
from vitcnn.measure.options import MeasureOptions
from vitcnn.settings import profile_settings
from vitcnn.ab.design import pair_order

allocator.apply("fixed")
sid, J = sys.argv[1], int(sys.argv[2])
s = {x.id: x for x in profile_settings("smoke", "cpu")}[sid]
opts = MeasureOptions(count_flops=False, warmup_seconds=0.5)
def blockf(p, calls):
    return math.log(statistics.median(p.time_block(calls, untimed=1)))
effects, resid = [], []
P = {"A": pipeline.prepare(s, "cpu", opts)}
for j in range(J):
    P["B"] = pipeline.prepare(s, "cpu", opts)
    calls = max(3, int(0.15 / P["A"].per_call_s))
    got = {"A": [], "B": []}
    for k in range(8):
        for side in pair_order(k):
            got[side].append(blockf(P[side], calls))
    effects.append(np.mean(got["B"]) - np.mean(got["A"]))
    for side in "AB":
        resid += list(np.array(got[side]) - np.mean(got[side]))
    P["A"].close(); P["A"] = P["B"]
sd_eff = float(np.std(effects, ddof=1))
sd_res = float(np.sqrt(np.sum(np.square(resid)) / (len(resid) - 2 * J)))
expected = sd_res * math.sqrt(2 / 8)
print(f"{sid} two setups: pair effects sd {100*sd_eff:.2f}% (noise alone predicts {100*expected:.2f}%), "
      f"effects % {' '.join(f'{100*e:+.1f}' for e in effects)}; ratio^2 {sd_eff**2/expected**2:.2f}", flush=True)
