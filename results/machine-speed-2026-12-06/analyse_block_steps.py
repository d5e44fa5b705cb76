"""The same on block-to-block steps (first differences): does the reference follow the fast jitter or only the slow wander?"""
import json, sys, numpy as np
for f in sys.argv[1:]:
    rows = json.load(open(f))
    B = np.log([r["block"] for r in rows]); S = np.log([(r["s1"]*r["s2"])**.5 for r in rows]); P = np.log([(r["p1"]*r["p2"])**.5 for r in rows])
    dB = np.diff(B); 
    for lab, C in (("spin", S), ("mm", P), ("both", (S+P)/2)):
        dC = np.diff(C); beta = np.polyfit(dC, dB, 1)[0]
        print(f.split('/')[-1], lab, "diff sd raw %.1f%%  adjusted %.1f%% beta %.2f corr %.2f" % (100*dB.std()/2**.5, 100*(dB-beta*dC).std()/2**.5, beta, np.corrcoef(dB, dC)[0,1]))
