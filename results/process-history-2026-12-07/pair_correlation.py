import gzip, json, sys, glob, math
import numpy as np
allx, ally = [], []
for f in sorted(glob.glob(sys.argv[1])):
    d = json.load(gzip.open(f))
    xs, ys = [], []
    for s in d["settings"]:
        P = s["processes"]
        if not P: continue
        m = {}
        for b in s["blocks"]:
            m.setdefault((b["side"], b["process"]), []).append(math.log(b["median"]))
        if not all((side, k) in m for side in "AB" for k in range(P)): continue
        a = np.array([np.mean(m[("A", k)]) for k in range(P)]); bb = np.array([np.mean(m[("B", k)]) for k in range(P)])
        xs += list(a - a.mean()); ys += list(bb - bb.mean())
    r = np.corrcoef(xs, ys)[0, 1]
    allx += xs; ally += ys
    print(f.split("/")[-1], "n", len(xs), "corr(A_k, B_k effects)", round(r, 2))
print("all", len(allx), round(np.corrcoef(allx, ally)[0, 1], 2))
