#!/usr/bin/env bash
# 24 fresh processes one after another (alone on the machine), then the correlations.
cd "$(dirname "$0")"
for i in $(seq 24); do python3 process.py 2>/dev/null; done > processes.jsonl
python3 - <<'PY' > processes.txt
import json
from scipy import stats
rows = [json.loads(line) for line in open("processes.jsonl")]
keys = list(rows[0])
for r in rows:
    print("  ".join(f"{k} {r[k]:9.1f}" for k in keys))
for k in keys[1:]:
    rho = stats.spearmanr([r["model_ms"] for r in rows], [r[k] for r in rows])[0]
    spread = max(r[k] for r in rows) / min(r[k] for r in rows)
    print(f"Spearman rho(model_ms, {k}) = {rho:+.2f}; max/min of {k} over processes {spread:.2f}")
print(f"max/min of model_ms over processes {max(r['model_ms'] for r in rows) / min(r['model_ms'] for r in rows):.2f}")
PY
cat processes.txt
