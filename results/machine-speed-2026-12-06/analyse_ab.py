"""vitcnn ab A/A sessions (--json, plain or gzipped with a .gz name): block residuals and process effects against the speed probe, per setting."""
import gzip, sys, json, math, numpy as np
sys.path.insert(0, ".")
from vitcnn.gate import paired
for f in sys.argv[1:]:
    d = json.load(gzip.open(f) if f.endswith(".gz") else open(f))
    print("==", f, d.get("wall_s"))
    for s in d["settings"]:
        bl = [b for b in s["blocks"] if b.get("median") and (b.get("host") or {}).get("speed_probe_ns")]
        if len(bl) < 10: print("  no probes", s["id"]); continue
        Y = [paired.Block(b["side"], b["process"], b["round"], b["median"]) for b in bl]
        C = [paired.Block(b["side"], b["process"], b["round"], b["host"]["speed_probe_ns"]) for b in bl]
        _, ey, ry, df = paired._fit(Y); _, ec, rc, _ = paired._fit(C)
        beta = float(ry @ rc / (rc @ rc))
        r = float(np.corrcoef(ry, rc)[0, 1])
        adj = ry - beta * rc
        # process level: effects vs probe effects (centred per side)
        units = sorted({(b.side, b.process) for b in Y})
        ey = np.array(ey); ec = np.array(ec)
        rp = float(np.corrcoef(ey, ec)[0, 1])
        vy = paired.variance_components(Y)
        Yadj = [paired.Block(b.side, b.process, b.round, b.median / (c.median ** beta)) for b, c in zip(Y, C)]
        va = paired.variance_components(Yadj)
        print(f"  {s['id'][:36]:36} block r {r:+.2f} beta {beta:.2f} resid sd {100*math.sqrt(ry@ry/df):.1f}% -> {100*math.sqrt(adj@adj/(df-1)):.1f}%;"
              f" process r {rp:+.2f}; between sd {100*math.sqrt(vy.between):.1f}% -> {100*math.sqrt(va.between):.1f}%, share {vy.share_between:.0%} -> {va.share_between:.0%}")
