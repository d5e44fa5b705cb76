"""Each `vitcnn ab --json` session read again at alpha 0.05, 0.025 and 0.01 from the same blocks (paired.estimate and
decide at the session's looks): slower (sl), faster (fa), inconclusive (inc) and the median detectable slowdown (det).

    python results/ab-design-2026-12-07/alphas.py SESSION.json[.gz] ...
"""
import gzip
import json
import statistics
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from vitcnn.ab.driver import paired_blocks  # noqa: E402
from vitcnn.gate import paired  # noqa: E402

for path in sys.argv[1:]:
    d = json.load(gzip.open(path) if path.endswith('.gz') else open(path))
    looks = d['options']['looks']
    settings = [paired_blocks([b for b in s['blocks'] if b.get('median')]) for s in d['settings']]
    out = []
    for alpha in (0.05, 0.025, 0.01):
        es = [paired.estimate(blocks, looks, alpha) for blocks in settings]
        v = paired.decide(es, alpha)
        c = Counter(x.label for x in v)
        out.append(f"a={alpha}: sl {c['slower']:2} fa {c['faster']} inc {c['inconclusive']:2} det {statistics.median(e.detectable for e in es):.1%}")
    print(f"{path.split('/')[-1]:22}", ' | '.join(out))
