#!/usr/bin/env bash
# Rebuild the committed smoke results' report and the golden outputs the tests compare against, from the run files.
#
#   scripts/regenerate-golden.sh          # after a renderer changed on purpose: review the diff, commit it
#
# The run files are measurements, not outputs of this script. results/cpu-smoke/run.json and run-2.json are two
# unchanged runs of the smoke profile, one after the other on one quiet machine (its README says which, and the
# command). Re-measure them only on purpose, with that command, and then run this script.
#
# What it writes:
#   results/cpu-smoke/report.md and its figures       python -m vitcnn report run.json
#   tests/data/cpu-smoke/report.md                     the same report (tests/test_cli.py renders it again)
#   tests/data/cpu-smoke/compare.txt, compare.md       python -m vitcnn compare run.json run-2.json (an A/A)
#   tests/data/cpu-smoke/summary.txt                   the end-of-run table of run.json (tests/test_summary.py)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
run=results/cpu-smoke/run.json
second=results/cpu-smoke/run-2.json
golden=tests/data/cpu-smoke

rm -f results/cpu-smoke/*.png
"$python" -m vitcnn report "$run" --out results/cpu-smoke
cp results/cpu-smoke/report.md "$golden/report.md"
status=0
"$python" -m vitcnn compare "$run" "$second" --markdown "$golden/compare.md" > "$golden/compare.txt" || status=$?
if (( status > 1 )); then  # 1 is a regression verdict, a valid output; 2 is a usage error
    echo "vitcnn compare failed (exit $status)" >&2
    exit "$status"
fi
"$python" - "$run" "$golden/summary.txt" <<'PY'
import sys
from pathlib import Path

from vitcnn.runfile import load_run
from vitcnn.summary import summary_table

Path(sys.argv[2]).write_text(summary_table(load_run(sys.argv[1]), cpu_count=2) + "\n")
PY
echo "regenerated: results/cpu-smoke/report.md, $golden/{report.md,compare.txt,compare.md,summary.txt}"
