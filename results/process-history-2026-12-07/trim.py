"""Does the physical placement of a process's heap set its speed? One setup; malloc_trim(0) hands the free heap
pages back to the kernel, so the next calls fault in fresh physical pages at the same addresses. Segments of 2
blocks: T a1 a2 T b1 b2 ...; compare (a2 - b1), across a trim, with (a1 - a2), within (experiment only)."""
import sys, math, statistics, time, ctypes, resource
import numpy as np
from vitcnn.measure import allocator, pipeline
from vitcnn.measure.options import MeasureOptions
from vitcnn.settings import profile_settings

allocator.apply(sys.argv[3] if len(sys.argv) > 3 else "fixed")
libc = ctypes.CDLL(None)
sid, J = sys.argv[1], int(sys.argv[2])
s = {x.id: x for x in profile_settings("smoke", "cpu")}[sid]
p = pipeline.prepare(s, "cpu", MeasureOptions(count_flops=False, warmup_seconds=0.5))
calls = max(3, int(0.15 / p.per_call_s))
def block():
    return math.log(statistics.median(p.time_block(calls, untimed=2)))
segs = []
for j in range(J):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    if j % 2 == 0 or "always" in sys.argv: libc.malloc_trim(0)
    else: time.sleep(0.0)
    a1 = block(); a2 = block()
    segs.append((j % 2 == 0, a1, a2, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0))
within = [a1 - a2 for _, a1, a2, _ in segs]
across_trim = [segs[i][2] - segs[i + 1][1] for i in range(len(segs) - 1) if segs[i + 1][0]]
across_none = [segs[i][2] - segs[i + 1][1] for i in range(len(segs) - 1) if not segs[i + 1][0]]
sd = lambda v: 100 * math.sqrt(np.mean(np.square(v)))
print(f"{sid}: {calls} calls/block; rms diff within segment {sd(within):.2f}%, across a trim {sd(across_trim):.2f}%, "
      f"across no trim {sd(across_none):.2f}%; faults per trim segment {np.mean([f for t,_,_,f in segs if t]):.0f}, "
      f"other {np.mean([f for t,_,_,f in segs if not t]):.0f}", flush=True)
print("segment means ms:", " ".join(f"{'T' if t else '-'}{1e3*math.exp((a1+a2)/2):.2f}" for t, a1, a2, _ in segs))
