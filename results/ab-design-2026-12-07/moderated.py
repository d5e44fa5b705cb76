"""Each stored `vitcnn ab --json` session read again by the driver's rule (`t`: each setting's own two-sample
t-test over its processes) and by the moderated rule of scripts/aa-false-alarms.py (`mod`: each setting's spread
between processes shrunk toward the session's, Smyth's empirical-Bayes prior fitted to all its settings) at alpha
0.025, 0.01 and 0.005 per direction: slower (sl), faster (fa), inconclusive (inc), median detectable slowdown (det);
d0 and s0 are the prior's degrees of freedom and sd (log). Process effects in machine time where the driver takes
them so (paired.machine_time).

    python results/ab-design-2026-12-07/moderated.py SESSION.json.gz ...
"""
import dataclasses
import gzip
import importlib.util
import json
import math
import statistics
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from vitcnn.ab.design import ABOptions  # noqa: E402
from vitcnn.ab.driver import paired_blocks  # noqa: E402
from vitcnn.ab.sides import Side  # noqa: E402
from vitcnn.gate import paired  # noqa: E402

spec = importlib.util.spec_from_file_location("aa_false_alarms", ROOT / "scripts" / "aa-false-alarms.py")
synthetic = importlib.util.module_from_spec(spec)
spec.loader.exec_module(synthetic)


def effects_of(blocks):
    found = paired.machine_time(blocks)
    return found[0] if found else paired.process_effects(blocks)


for path in sys.argv[1:]:
    session = json.loads(gzip.open(path).read())
    looks = session["options"]["looks"]
    settings = [paired_blocks([b for b in s["blocks"] if b.get("median")]) for s in session["settings"]]
    spreads = [synthetic.sides_spread(effects_of(blocks)) for blocks in settings]
    prior = synthetic.spread_prior(np.array([s[2] for s in spreads]), np.array([s[3] for s in spreads], dtype=float))
    out = [f"d0 {prior[0]:4.1f} s0 {math.sqrt(prior[1]):.3f}"]
    for alpha in (0.025, 0.01, 0.005):
        for rule in ("t", "mod"):
            if rule == "t":
                found = [paired.estimate(blocks, looks, alpha) for blocks in settings]
            else:  # a design with the session's looks (processes - first + 1) at this alpha
                design = dataclasses.replace(ABOptions(Side("A"), Side("B"), [], "smoke"), alpha=alpha, processes=4,
                                             first=5 - looks)
                found = [synthetic.moderated(s, prior, design, len(blocks) // (2 * len(s[0])))
                         for s, blocks in zip(spreads, settings)]
            labels = Counter(v.label for v in paired.decide(found, alpha))
            out.append(f"{rule}@{alpha}: sl {labels['slower']:2} fa {labels['faster']} inc {labels['inconclusive']:2} "
                       f"det {statistics.median(e.detectable for e in found):5.1%}")
    print(f"{Path(path).name:22}", " | ".join(out))
