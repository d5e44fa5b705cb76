#!/usr/bin/env bash
# The first run on a new GPU machine: what the machine is, the GPU-only tests, a slice of blog-lite that decides
# the essay's claims, a short A/A of `vitcnn ab`, and a checklist of what would be wrong, in about 8 minutes.
#
#   scripts/gpu-first-contact.sh OUT_DIR            # on the GPU machine, from the repository root
#   VITCNN_REHEARSAL=1 scripts/gpu-first-contact.sh OUT_DIR   # the same steps on this CPU with the tiny twins
#
# Installs nothing: it runs the machine's own python3 (PYTHON=...) on this checkout. Every step has a time box
# (seconds, VITCNN_BOX_<STEP>); a step that runs out is interrupted (SIGTERM: pytest writes the settings measured
# so far) and the next one starts. OUT_DIR gets at most 8 files: summary.md (every step's wall time and outcome,
# what was not reached, the checklist), report.md, gpu-tests.log, ab.md and first-contact.tar.gz (everything).
set -uo pipefail

out=${1:?usage: scripts/gpu-first-contact.sh OUT_DIR}
cd "$(dirname "$0")/.." || exit 2
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
work="$out/first-contact"
mkdir -p "$work/runs"
summary="$out/summary.md"

if [[ ${VITCNN_REHEARSAL:-0} == 1 ]]; then  # CPU, tiny twins, small boxes: what tests/test_gpu_first_contact.py runs
    device=cpu models=vit_t16,vitdet_t16,convnext_atto small=64 large=128 one=1 many=2 precision=bf16
    default_boxes=(10 60 60 60 60 60 60) cold=()
else
    device=cuda models=vit_b16,vitdet_b16,convnext_b small=224 large=1024 one=1 many=32 precision=bf16
    # Boxes from the first H200 run: 11 GPU tests took 120 s with a warm inductor cache; a base-model setting
    # takes 20-25 s (8-18 s of it compiling), so a 3-setting slice 65-75 s; the A/A 77 s.
    default_boxes=(20 150 80 70 80 70 0) cold=(--cold)  # a bare machine: every compile must miss the caches
fi
# Every `gpu` test but the max-autotune case (it autotunes for minutes); a test module that cannot be imported
# here (a docs-only dependency missing) must not stop the rest.
gpu_test_args=(-m gpu tests --continue-on-collection-errors --deselect
    "tests/measure/test_pipeline.py::test_gpu_cuda_graph_modes_probe_eager_and_count_the_recording[max-autotune]")
box_machine=${VITCNN_BOX_MACHINE:-${default_boxes[0]}}
box_tests=${VITCNN_BOX_TESTS:-${default_boxes[1]}}
box_slice_a=${VITCNN_BOX_SLICE_A:-${default_boxes[2]}}
box_slice_b=${VITCNN_BOX_SLICE_B:-${default_boxes[3]}}
box_ab=${VITCNN_BOX_AB:-${default_boxes[4]}}
box_slice_c=${VITCNN_BOX_SLICE_C:-${default_boxes[5]}}
box_slice_d=${VITCNN_BOX_SLICE_D:-${default_boxes[6]}}

started=$(date +%s)
{
    echo "# vitcnn first contact ($device)"
    echo
    echo "started $(date -u +%FT%TZ) on $(hostname); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo
    echo "| step | box (s) | wall (s) | outcome |"
    echo "| --- | --- | --- | --- |"
} >"$summary"

# step NAME BOX LOG COMMAND...: run COMMAND for at most BOX seconds (SIGTERM, SIGKILL 20 s later), log its output.
step() {
    local name=$1 box=$2 log=$3 t0 rc outcome
    shift 3
    if [[ $box -le 0 ]]; then
        echo "| $name | 0 | - | NOT RUN (no time box) |" >>"$summary"
        return
    fi
    echo "== $name (box ${box}s)"
    t0=$(date +%s)
    # bash -c: COMMAND may be a function of this script; timeout signals its whole process group, pytest included
    timeout -s TERM -k 20 "$box" bash -c '"$@"' "$name" "$@" >"$log" 2>&1
    rc=$?
    case $rc in
        0) outcome="ok" ;;
        124 | 137) outcome="TIMED OUT: interrupted at its box; see its log for how far it got" ;;
        *) outcome="exit $rc (see $(basename "$log"))" ;;
    esac
    echo "| $name | $box | $(($(date +%s) - t0)) | $outcome |" >>"$summary"
    tail -n 3 "$log"
}

machine() {
    command -v nvidia-smi >/dev/null && nvidia-smi && nvidia-smi -q -d CLOCK,POWER,ECC,COMPUTE | head -120
    "$PYTHON" - "$device" <<'EOF'
import json, sys
import torch
from vitcnn import fingerprint
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
for name in ("triton", "timm", "pytest_benchmark", "scipy", "numpy", "matplotlib", "pynvml"):
    try:
        print(name, __import__(name).__version__)
    except Exception as exc:  # a missing package is a finding, not the end of the step
        print(name, "MISSING:", type(exc).__name__, exc)
fp = fingerprint.collect(sys.argv[1])
print("slug", fingerprint.slug(fp), "complete", fingerprint.is_complete(fp))
print(json.dumps(fp, indent=1, sort_keys=True, default=str))
EOF
}

# The blog-lite slice in order of value: 1024 px at batch 1 for all three models first (the essay's claim about
# high resolution), then 224 px at the large batch, then 1024 px at the large batch, then 224 px at batch 1.
slice_run() {  # slice_run NAME RESOLUTION BATCH
    "$PYTHON" -m pytest benchmarks/test_inference.py --benchmark-only -q -p no:cacheprovider \
        --vitcnn-device "$device" --vitcnn-profile blog-lite --vitcnn-models "$models" \
        --vitcnn-res "$2" --vitcnn-batch "$3" --vitcnn-precision "$precision" \
        --vitcnn-target-seconds 0.5 --vitcnn-warmup-seconds 0.5 --benchmark-json "$work/runs/$1.json" \
        --vitcnn-compile-times off --vitcnn-eager-twin off  # boxed: first numbers first; a full run adds them
}

export -f machine slice_run
export PYTHON device models precision work
step machine "$box_machine" "$work/machine.txt" machine
step gpu-tests "$box_tests" "$work/gpu-tests.log" "$PYTHON" -m pytest -v -p no:cacheprovider "${gpu_test_args[@]}"
step "slice ${large}px bs$one" "$box_slice_a" "$work/slice-a.log" slice_run a "$large" "$one"
step "slice ${small}px bs$many" "$box_slice_b" "$work/slice-b.log" slice_run b "$small" "$many"
# A/A: both sides the same code; GPU noise as the paired statistics see it, on two settings of the slice just
# measured (compiled as the gate measures them; their inductor artifacts are warm). Eager ViT-B/16 at this size
# was close to launch-bound on the H200 and its processes ran in two speed regimes.
step "ab A/A" "$box_ab" "$work/ab.log" "$PYTHON" -m vitcnn ab --device "$device" --profile blog-lite \
    --models "${models%%,*},${models##*,}" --res "$small" --batch "$many" --precision "$precision" --compile default \
    --processes 2 --first-processes 2 --rounds 4 --markdown "$work/ab.md" --json "$work/ab.json"
step "slice ${large}px bs$many" "$box_slice_c" "$work/slice-c.log" slice_run c "$large" "$many"
step "slice ${small}px bs$one" "$box_slice_d" "$work/slice-d.log" slice_run d "$small" "$one"

runs=("$work"/runs/*.json)
[[ -e ${runs[0]} ]] || runs=()
{
    echo
    echo "total wall: $(($(date +%s) - started)) s"
    echo
    echo "## Not reached"
    echo
    "$PYTHON" - "$device" "$models" "$small,$large" "$one,$many" "$precision" "${runs[@]}" <<'EOF'
import sys
from vitcnn import settings
from vitcnn.runfile import load_run
device, models, resolutions, batches, precision, *paths = sys.argv[1:]
wanted = settings.profile_settings("blog-lite", device, models=models.split(","), precisions=[precision],
                                   resolutions=[int(r) for r in resolutions.split(",")],
                                   batches=[int(b) for b in batches.split(",")])
done = {}
for path in paths:
    try:
        done.update(load_run(path).results)
    except Exception as exc:
        print(f"- {path}: unreadable ({exc})")
missing = [s.id for s in wanted if s.id not in done]
print("\n".join(f"- {i}" for i in missing) or "- every setting of the slice has a result")
EOF
    echo
    echo "## Checklist"
    echo
    echo '```'
    if [[ ${#runs[@]} -gt 0 ]]; then
        "$PYTHON" -m vitcnn check "${cold[@]}" "${runs[@]}"
        "$PYTHON" -m vitcnn report "${runs[@]}" --out "$work/report" >/dev/null && cp "$work/report/report.md" "$out/"
    else
        echo "no run file: no setting was measured"
    fi
    echo '```'
} >>"$summary" 2>&1

cp "$work/gpu-tests.log" "$out/" 2>/dev/null
cp "$work/ab.md" "$out/" 2>/dev/null
tar -czf "$out/first-contact.tar.gz" -C "$out" first-contact && rm -rf "$work"
cat "$summary"
