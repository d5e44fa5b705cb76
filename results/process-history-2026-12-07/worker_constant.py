import gzip, json, sys, glob, math
import numpy as np
for f in sorted(glob.glob(sys.argv[1])):
    d = json.load(gzip.open(f))
    rows = []
    for s in d["settings"]:
        eff = {}
        for side in "AB":
            m = {}
            for b in s["blocks"]:
                if b["side"] == side:
                    m.setdefault(b["process"], []).append(math.log(b["median"]))
            means = {k: np.mean(v) for k, v in m.items()}
            mu = np.mean(list(means.values()))
            for k, v in means.items():
                eff[(side, k)] = v - mu
        rows.append(eff)
    keys = sorted(rows[0])
    M = np.array([[r.get(k, np.nan) for k in keys] for r in rows])  # settings x processes
    M = M[~np.isnan(M).any(1)]
    # correlation of process effects between consecutive settings
    c = [np.corrcoef(M[i], M[i + 1])[0, 1] for i in range(len(M) - 1)]
    # share of variance of process effects explained by a per-process constant
    tot = (M ** 2).sum(); const = (M.mean(0) ** 2).sum() * len(M)
    print(f.split('/')[-1], "settings", len(M), "median corr(consecutive)", round(float(np.median(c)), 2),
          "share by worker constant", round(const / tot, 3), "(chance ~", round(1 / len(M), 3), ")",
          "sd proc eff %", round(100 * float(np.sqrt((M ** 2).mean())), 1))
