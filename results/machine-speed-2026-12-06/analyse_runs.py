"""Run shifts against the reference's shifts over explore/run*.json (run from the repository root)."""
import json, numpy as np, glob
runs = [json.load(open(f)) for f in sorted(glob.glob("results/machine-speed-2026-12-06/explore/run*.json"))]
Y = np.log([[s["block"] for s in r] for r in runs]); C = np.log([[s["probe"] for s in r] for r in runs])
ids = [s["id"] for s in runs[0]]
def resid(M):  # two-way: run + setting
    return M - M.mean(1, keepdims=True) - M.mean(0, keepdims=True) + M.mean()
print("run shifts raw (%):", np.round(100*(Y.mean(1)-Y.mean()),1), " probe:", np.round(100*(C.mean(1)-C.mean()),1))
print("per-setting medians across runs, raw sd (no run effect removed) per setting:", np.round(100*Y.std(0, ddof=1),1))
R, RC = resid(Y), resid(C)
beta = (R*RC).sum()/(RC*RC).sum()
df = (Y.shape[0]-1)*(Y.shape[1]-1)
print("residual sd after run+setting: raw %.1f%%; probe-adjusted beta=%.2f: %.1f%%; beta=1: %.1f%%" % (
    100*np.sqrt((R**2).sum()/df), beta, 100*np.sqrt(((R-beta*RC)**2).sum()/(df-1)), 100*np.sqrt(((R-RC)**2).sum()/df)))
print("corr resid", np.corrcoef(R.ravel(), RC.ravel())[0,1])
# without run effect removal, only setting effect
R0 = Y - Y.mean(0); C0 = C - C.mean(0); b0 = (R0*C0).sum()/(C0*C0).sum()
print("setting-only residual sd raw %.1f%%, adjusted (beta %.2f) %.1f%%" % (100*R0.std(), b0, 100*(R0-b0*C0).std()))
