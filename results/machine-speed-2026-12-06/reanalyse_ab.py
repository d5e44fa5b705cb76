"""One `vitcnn ab --json` session read twice from the same blocks: by the clock and in machine time.

    python results/machine-speed-2026-12-06/reanalyse_ab.py SESSION.json[.gz] ...

Per session: the verdict counts and the median detectable slowdown each way (vitcnn.gate.paired.estimate and decide
at the session's alpha, threshold and detect; every setting with all of its blocks, so a setting the driver stopped
early is read at that stage's blocks). The driver chose its stages from the machine-time looks."""
import gzip
import json
import statistics
import sys
from collections import Counter

sys.path.insert(0, ".")
from vitcnn.gate import paired  # noqa: E402

for path in sys.argv[1:]:
    data = json.load(gzip.open(path) if path.endswith(".gz") else open(path))
    options = data.get("options", {})
    alpha, threshold, detect = options.get("alpha", 0.05), options.get("threshold", 0.03), options.get("detect", 0.05)
    looks = options.get("looks", 1)
    for by_machine in (False, True):
        estimates = []
        for entry in data["settings"]:
            blocks = [paired.Block(b["side"], b["process"], b["round"], b["median"],
                                   (b.get("host") or {}).get("speed_probe_ns")) for b in entry["blocks"] if b.get("median")]
            if blocks:
                estimates.append(paired.estimate(blocks, looks, alpha, threshold, by_machine))
        verdicts = paired.decide(estimates, alpha, threshold, detect)
        counts = Counter(v.label for v in verdicts)
        machine = sum(e.machine_slope is not None for e in estimates)
        print(f"{path}: {'machine time' if by_machine else 'clock':12} {dict(counts)}; median detectable "
              f"{statistics.median(e.detectable for e in estimates):.1%}"
              + (f"; {machine} of {len(estimates)} settings in machine time" if by_machine else ""))
