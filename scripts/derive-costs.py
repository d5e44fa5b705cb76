"""Re-derive the package's measured run times (vitcnn/scale/costs.json) from the committed results.

    python scripts/derive-costs.py          # rewrite vitcnn/scale/costs.json
    python scripts/derive-costs.py --check  # exit 1 if it differs from what results/ gives

Sources: every run file under results/ whose settings carry `setting_wall_s`, and every GPU first-contact folder
(summary.md with its run-*.json), whose slices give one figure per slice (vitcnn/scale/costs.py says how).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vitcnn.scale import costs  # noqa: E402


def derive(results: Path = ROOT / "results") -> str:
    runs = sorted(p for p in results.rglob("*.json") if p.parent.name != "runs" or "history" not in p.parts)
    machines = costs.from_runs([p for p in runs if _has_wall(p)], root=ROOT)
    for summary in sorted(results.rglob("first-contact*/summary.md")):
        machines += costs.from_first_contact(summary, sorted(summary.parent.glob("run-*.json")), root=ROOT)
    return costs.dump(machines)


def _has_wall(path: Path) -> bool:
    return b'"setting_wall_s"' in path.read_bytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    text = derive()
    if args.check:
        same = costs.COSTS_FILE.read_text() == text
        print("costs.json is current" if same else "costs.json differs from what results/ gives: rerun without --check")
        return 0 if same else 1
    costs.COSTS_FILE.write_text(text)
    print(f"wrote {costs.COSTS_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
