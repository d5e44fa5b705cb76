#!/usr/bin/env bash
# The stored gate on this machine (issue 34): a baseline of the smoke profile's eager settings saved from 3 fresh
# processes, then unchanged gated runs (A/A) and planted regressions, each gated against it. Run it alone on the
# machine (no other benchmark or test beside it). Usage: scripts/stored-gate-experiment.sh OUT_DIR [A/A RUNS]
set -euo pipefail
out=${1:?usage: $0 OUT_DIR [A/A RUNS]}
aa=${2:-5}
python=${PYTHON:-python3}
selection=(benchmarks -p no:cacheprovider -k eager)
mkdir -p "$out/baselines"
"$python" -m vitcnn fingerprint > "$out/machine.txt"
"$python" -m vitcnn baseline record --runs 3 --dir "$out/baselines" -- "${selection[@]}" > "$out/record.log" 2>&1
gated() {  # NAME [ENV=VALUE ...] [-- extra pytest args]: one gated run, its JSON, log and verdict table
    local name=$1
    shift
    local env=() extra=()
    while (($#)) && [[ $1 != -- ]]; do env+=("$1"); shift; done
    (($#)) && shift && extra=("$@")
    env "${env[@]}" "$python" -m pytest "${selection[@]}" --benchmark-only --vitcnn-gate \
        --vitcnn-baseline-dir "$out/baselines" --benchmark-json "$out/$name.json" "${extra[@]}" \
        > "$out/$name.log" 2>&1 || true
    "$python" -m vitcnn compare "$out"/baselines/*.json "$out/$name.json" > "$out/$name.txt" 2>&1 || true
    head -1 "$out/$name.txt"
}
for k in $(seq 1 "$aa"); do gated "aa-$k"; done
gated plant-10 VITCNN_PLANT_MATMUL=1 -- -p tests.plant_matmul
gated plant-5 VITCNN_PLANT_MATMUL=1 VITCNN_PLANT_FRACTION=0.5 -- -p tests.plant_matmul
gated plant-20 VITCNN_PLANT_MATMUL=1 VITCNN_PLANT_REPEAT=2 -- -p tests.plant_matmul
gated slow-2x VITCNN_FORCE_SLOW=vit_t16,vitdet_t16,convnext_atto,nfnet_tiny VITCNN_FORCE_SLOW_FACTOR=2 \
    -- -p tests.force_failure
