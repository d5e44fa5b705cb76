"""Per-block correlation of the references with the block time (explore/MODEL-RES.json files given as arguments)."""
import json, sys, numpy as np
from scipy import stats
for f in sys.argv[1:]:
    rows = json.load(open(f))
    B = np.log([r["block"] for r in rows])
    print(f, "n", len(rows), "block sd %.1f%%" % (100*B.std()))
    for lab, C in (("s1", np.log([r["s1"] for r in rows])), ("s2", np.log([r["s2"] for r in rows])),
                   ("s12", np.log([(r["s1"]*r["s2"])**.5 for r in rows])), ("p12", np.log([(r["p1"]*r["p2"])**.5 for r in rows]))):
        r = np.corrcoef(B, C)[0,1]; slope = np.polyfit(C, B, 1)[0]; adj = B - slope*(C-C.mean())
        print(f"  {lab}: pearson {r:+.2f} slope {slope:.2f} adj sd {100*adj.std():.1f}%  lag1 autocorr block {np.corrcoef(B[1:],B[:-1])[0,1]:+.2f}")
