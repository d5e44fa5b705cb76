"""Setup wall time of one setting in 8 workers: all at once vs in waves; then the spread of per-call times
measured alone afterwards (experiment only, not part of the project)."""
import sys, time, tempfile
from pathlib import Path
from vitcnn.ab.sides import Side
from vitcnn.settings import profile_settings
from vitcnn.workers.checkout import Checkout, PROJECT_ROOT
from vitcnn.workers.process import WorkerProcess

ids = sys.argv[1].split(",")
waves = [int(w) for w in sys.argv[2].split(",")]  # processes set up at once
extra = sys.argv[3:]
side = Side("A", sys.executable, {}, tuple(extra))
checkout = Checkout(None, PROJECT_ROOT)
logs = Path(tempfile.mkdtemp())
args = ["--vitcnn-device", "cpu", "--vitcnn-profile", "smoke", "--vitcnn-warmup-seconds", "0.5"]
t = time.perf_counter()
workers = [WorkerProcess(side, checkout, args, logs / f"w{k}.log") for k in range(8)]
for w in workers: w.request("hello")
print(f"start+hello {time.perf_counter() - t:.1f} s", flush=True)
settings = {s.id: s for s in profile_settings("smoke", "cpu")}
for sid in ids:
    s = settings[sid]
    for width in waves:
        t = time.perf_counter()
        for lo in range(0, 8, width):
            group = workers[lo:lo + width]
            for k, w in enumerate(group): w.send("setup", setting=s.as_dict(), count_flops=lo + k == 0)
            for w in group: w.receive("setup")
        setup = time.perf_counter() - t
        per = [w.request("calibrate", seconds=0.05)["per_call_s"] * 1e3 for w in workers]
        t = time.perf_counter()
        for w in workers: w.send("finish")
        for w in workers: w.receive("finish")
        fin = time.perf_counter() - t
        for w in workers: w.request("free")
        print(f"{sid} width {width}: setup {setup:.1f} s, finish {fin:.1f} s, per call ms "
              f"{' '.join(f'{p:.2f}' for p in per)}", flush=True)
for w in workers: w.close()
checkout.close()
