"""Why whole processes run off their twins: the variance of an A/A's blocks split between and within processes, and
the host-state fields that move with the slow processes.

    python scripts/regimes.py ab-1.json [ab-2.json ...] [--label NAME ...]

Each file is the `--json` output of one `vitcnn ab` session, or that gzipped (an A/A: both sides the same code, each
process a random draw). Per file and setting it prints the share of the block variance that lies between processes
(vitcnn.gate.paired.variance_components), the spread of the process effects, and for every host-state field the
Spearman correlation between a process's effect and its mean of that field over its blocks (with 8 processes a
|rho| above ~0.7 is worth a look; none of this is a test). Then one line per file: the median share over its
settings, so conditions (an allocator, pinning, ASLR off) can be compared file by file.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import statistics
import sys
from pathlib import Path

from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitcnn.gate import paired  # noqa: E402

FIELDS = ("others_cores", "wait_share", "minor_faults_per_call", "involuntary_switches", "steal_share", "speed_probe_ns",
          "cpu")


def _field(block: dict, name: str) -> float | None:
    host = block.get("host") or {}
    if name == "cpu":  # the CPU the busiest thread was on when the block started
        cpus = host.get("cpus_start") or []
        return float(cpus[0]) if cpus else None
    value = host.get(name)
    return float(value) if value is not None else None


def setting_rows(data: dict) -> list[dict]:
    rows = []
    for entry in data["settings"]:
        blocks = [b for b in entry["blocks"] if b.get("median")]
        if len({(b["side"], b["process"]) for b in blocks}) < 4:
            continue
        shares = paired.variance_components([paired.Block(b["side"], b["process"], b["round"], b["median"])
                                             for b in blocks])
        effects = paired.process_effects([paired.Block(b["side"], b["process"], b["round"], b["median"])
                                          for b in blocks])
        units = sorted(effects)
        correlations = {}
        for name in FIELDS:
            means = []
            for unit in units:
                values = [v for b in blocks if (b["side"], b["process"]) == unit and (v := _field(b, name)) is not None]
                means.append(statistics.fmean(values) if values else math.nan)
            if all(math.isfinite(m) for m in means) and len(set(means)) > 1:
                correlations[name] = float(stats.spearmanr([effects[u] for u in units], means).statistic)
        spread = [math.exp(effects[u]) for u in units]
        rows.append({"id": entry["id"], "processes": shares.processes, "share": shares.share_between,
                     "between_sd": math.sqrt(shares.between), "within_sd": math.sqrt(shares.within),
                     "range": max(spread) / min(spread) - 1, "correlations": correlations,
                     "verdict": ",".join(entry["verdict"]["labels"]), "retimed": sum(b.get("retimed") or 0
                                                                                      for b in blocks)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--label", action="append", default=[], help="a name per file, in order")
    args = parser.parse_args(argv)
    totals = []
    for i, path in enumerate(args.files):
        label = args.label[i] if i < len(args.label) else path.stem
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as f:
            rows = setting_rows(json.load(f))
        print(f"## {label} ({path})")
        print(f"{'setting':44} {'P':>2} {'between':>8} {'sd proc':>8} {'sd block':>8} {'range':>7}  verdict, "
              f"retimed, rho(effect, field)")
        for row in rows:
            rho = " ".join(f"{k}={v:+.2f}" for k, v in row["correlations"].items())
            print(f"{row['id']:44} {row['processes']:>2} {row['share']:>8.0%} {row['between_sd']:>8.1%} "
                  f"{row['within_sd']:>8.1%} {row['range']:>7.1%}  {row['verdict']}, {row['retimed']}, {rho}")
        if rows:
            totals.append((label, statistics.median(r["share"] for r in rows),
                           statistics.median(r["between_sd"] for r in rows)))
        print()
    for label, share, sd in totals:
        print(f"{label}: median share between processes {share:.0%}, median process sd {sd:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
