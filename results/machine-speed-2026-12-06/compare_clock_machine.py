"""The stored gate over one stored-gate experiment directory, by the clock and with machine time allowed: DIR NAME..."""
import sys, glob, re
sys.path.insert(0, ".")
from vitcnn.gate import rules, stored, baseline as bl
from vitcnn.runfile import load_run
base = bl.load_baseline(glob.glob(sys.argv[1] + "/baselines/*.json")[0])
orig = stored.StoredRuns.__init__
for mode in ("clock", "machine"):
    def init(self, b, mode=mode):
        orig(self, b); self.follows_host = (mode == "machine") and self.follows_host
    stored.StoredRuns.__init__ = init
    for name in sys.argv[2:]:
        c = rules.compare(base, load_run(f"{sys.argv[1]}/{name}.json"))
        labels = [v.labels[0] for v in c.verdicts]
        det = sorted(v.detectable for v in c.verdicts if v.detectable is not None)
        d = c.verdicts[0].detail
        m = re.search(r"own allowed ±(\d+)%.*shared allowed ±(\d+)%", d)
        print(f"{mode:8} {name:9} slower {labels.count('slower'):2} faster {labels.count('faster'):2} same {labels.count('same'):2} incon {labels.count('inconclusive'):2}  median detectable {det[len(det)//2]:.0%}  own±{m.group(1)}% shared±{m.group(2)}%")
