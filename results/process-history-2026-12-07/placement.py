"""Does where a setup's weights and input lie in memory set its speed? Two placements of the same weights and input
in one process, timed interleaved (ABBA...); a fresh pair J times (experiment only)."""
import sys, math, statistics
import numpy as np
from vitcnn.measure import allocator, pipeline
from vitcnn.measure.options import MeasureOptions
from vitcnn.settings import profile_settings
from vitcnn.ab.design import pair_order

allocator.apply("fixed")
sid, J = sys.argv[1], int(sys.argv[2])
what = sys.argv[3] if len(sys.argv) > 3 else "weights+input"
s = {x.id: x for x in profile_settings("smoke", "cpu")}[sid]
opts = MeasureOptions(count_flops=False, warmup_seconds=0.5)
p = pipeline.prepare(s, "cpu", opts)
params = [t for t in list(p.model.parameters()) + list(p.model.buffers())]
per = p.per_call_s
calls = max(3, int(0.15 / per))
def block():
    return math.log(statistics.median(p.time_block(calls, untimed=1)))
effects, resid = [], []
for j in range(J):
    base = ([t.data for t in params], p.x)
    other = ([t.data.clone() for t in params], p.x.clone()) if what == "weights+input" else \
            ([t.data.clone() for t in params], p.x) if what == "weights" else ([t.data for t in params], p.x.clone())
    places = {"A": base, "B": other}
    got = {"A": [], "B": []}
    for k in range(8):
        for side in pair_order(k):
            data, x = places[side]
            for t, d in zip(params, data): t.data = d
            p.x = x
            got[side].append(block())
    e = np.mean(got["B"]) - np.mean(got["A"])
    effects.append(e)
    for side in "AB":
        resid += list(np.array(got[side]) - np.mean(got[side]))
    # keep B's placement as the next base: the next pair compares it with a fresh one
    for t, d in zip(params, other[0]): t.data = d
    p.x = other[1]
    del base
sd_eff = float(np.std(effects, ddof=1))
sd_res = float(np.sqrt(np.sum(np.square(resid)) / (len(resid) - 2 * J)))
expected = sd_res * math.sqrt(2 / 8)
print(f"{sid} [{what}] {calls} calls/block: pair effects sd {100*sd_eff:.2f}% (noise alone predicts {100*expected:.2f}%), "
      f"effects % {' '.join(f'{100*e:+.1f}' for e in effects)}; ratio^2 {sd_eff**2/expected**2:.2f}", flush=True)
