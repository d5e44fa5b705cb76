"""The share of an A/A setting's block variance that lies between its processes (vitcnn.gate.paired.
variance_components, by the clock), per session, and its mean over the sessions given.

    python results/malloc-2026-12-07/variance_shares.py SESSION.json[.gz] ...
"""

from __future__ import annotations

import gzip
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vitcnn.ab.driver import paired_blocks  # noqa: E402
from vitcnn.gate import paired  # noqa: E402

shares, betweens = [], []
for path in map(Path, sys.argv[1:]):
    raw = path.read_bytes()
    data = json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
    for setting in data["settings"]:
        found = paired.variance_components(paired_blocks(setting["blocks"]))
        shares.append(found.share_between)
        betweens.append(found.between)
        print(f"{path.name:22s} {setting['id']:40s} between-process share {found.share_between:6.1%}   "
              f"process sd {found.between ** 0.5:6.2%}   block sd {found.within ** 0.5:6.2%}")
print(f"mean share between processes {statistics.mean(shares):.1%}; mean between-process variance "
      f"{statistics.mean(betweens):.2e} (sd {statistics.mean(betweens) ** 0.5:.2%})")
