#!/usr/bin/env bash
# The second run on a GPU machine (issue 36), in one device call of at most 9 minutes: what the first contact left
# open. The machine with a clock and power log beside every step; blog-lite's defaults (compile extras on) on two
# settings; the same two settings twice more with the extras off, in two processes (a stored-gate A/A, decided
# offline); per-block host state of eager ViT-B/16 processes, unpinned against pinned; training steps (both training
# claims); CUDA graphs (reduce-overhead) at 1024 px, batch 1; a compiled A/A of `vitcnn ab`; the checklist.
#
#   scripts/gpu-second-contact.sh OUT_DIR            # on the GPU machine, from the repository root
#   VITCNN_REHEARSAL=1 scripts/gpu-second-contact.sh OUT_DIR   # the same steps on this CPU with the tiny twins
#
# Installs nothing: it runs the machine's own python3 (PYTHON=...) on this checkout. Every step has a time box
# (seconds, VITCNN_BOX_<STEP> with STEP one of MACHINE DEFAULTS GATE_AA HOST TRAIN GRAPHS AB REPORT; 0 skips the
# step); a step that runs out is interrupted (SIGTERM: pytest writes the settings measured so far; `vitcnn ab`
# writes nothing) and the next one starts. After every step everything so far is packed into OUT_DIR, so a call
# killed from outside still brings back every step before the one it was in (summary.md says RUNNING in that one's
# row; a SIGTERM to this script also packs what that step wrote). OUT_DIR gets at most 6 files: summary.md,
# second-contact.tar.gz (everything: logs, run files, the clock log, the report), report.md, ab.md, host-ab.md,
# clocks.csv. VITCNN_TRAIN_COMPILE and VITCNN_GRAPHS_COMPILE set the training and CUDA-graph steps' compile modes.
set -uo pipefail

out=${1:?usage: scripts/gpu-second-contact.sh OUT_DIR}
cd "$(dirname "$0")/.." || exit 2
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
# The work folder lies outside OUT_DIR: everything under OUT_DIR comes back, at most 8 files, and a killed call
# must not leave dozens there. Only the tarball of it does.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/vitcnn-second-contact.XXXXXX") || exit 2
work="$scratch/second-contact"
mkdir -p "$work/runs"
summary="$out/summary.md"
tarball="$out/second-contact.tar.gz"

if [[ ${VITCNN_REHEARSAL:-0} == 1 ]]; then  # CPU, tiny twins, small boxes: what tests/test_gpu_second_contact.py runs
    device=cpu vit=vit_t16 vitdet=vitdet_t16 cnn=convnext_atto small=64 large=128 one=1 many=2 precision=bf16
    graphs_mode=default  # reduce-overhead is CUDA graphs, GPU-only: the step rehearses its wiring compiled by default
    target_s=0.3 warmup_s=0.3 cold=
    #              machine defaults gate-aa host train graphs ab report
    default_boxes=(30 120 90 120 180 120 120 60)
else
    device=cuda vit=vit_b16 vitdet=vitdet_b16 cnn=convnext_b small=224 large=1024 one=1 many=32 precision=bf16
    graphs_mode=reduce-overhead
    target_s=1.0 warmup_s=1.0 cold=--cold  # blog-lite's own timing; a bare machine: every first compile misses
    # Boxes from the first H200 contact (docs/results.md): the machine step took 14 s; a compiled base-model
    # setting 20-25 s from start to finish with the extras off (8-18 s of it compiling cold), a pytest process
    # about 8 s before its first setting; an eager `vitcnn ab` session 36 s to its first block (4 workers started
    # and primed), then about 12 s per setting for 4 rounds. Hence: defaults 2 settings x (22 s + a warm recompile
    # and an eager twin, ~10 s) + 8 = 72 (box 85); gate A/A 2 x (8 + 2 x ~13 s from the warm cache) = 68 (box 65,
    # the second process's last setting may be cut); host one session of 8 eager processes, 36 + ~24 = 60 (70);
    # train 2 steps (~40 s: forward and backward compiled) + 2 inference calls (~22 s) + 8 = 132 (140); graphs
    # 3 x ~26 + 8 = 86 (90); compiled A/A from the warm cache, 36 + ~15 = 51 (55); report: CPU only (15).
    # 535 s in all, under a call's ~560 s.
    #              machine defaults gate-aa host train graphs ab report
    default_boxes=(15 85 65 70 140 90 55 15)
fi
# The compile modes of the training and CUDA-graph steps (a rehearsal that must be quick: eager; compiled
# training takes about 50 s per setting on 2 cores with an empty inductor cache).
train_mode=${VITCNN_TRAIN_COMPILE:-default}
graphs_mode=${VITCNN_GRAPHS_COMPILE:-$graphs_mode}
box_machine=${VITCNN_BOX_MACHINE:-${default_boxes[0]}}
box_defaults=${VITCNN_BOX_DEFAULTS:-${default_boxes[1]}}
box_gate_aa=${VITCNN_BOX_GATE_AA:-${default_boxes[2]}}
box_host=${VITCNN_BOX_HOST:-${default_boxes[3]}}
box_train=${VITCNN_BOX_TRAIN:-${default_boxes[4]}}
box_graphs=${VITCNN_BOX_GRAPHS:-${default_boxes[5]}}
box_ab=${VITCNN_BOX_AB:-${default_boxes[6]}}
box_report=${VITCNN_BOX_REPORT:-${default_boxes[7]}}

started=$(date +%s)
{
    echo "# vitcnn second contact ($device)"
    echo
    echo "started $(date -u +%FT%TZ) on $(hostname); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo
    echo "| step | box (s) | wall (s) | outcome |"
    echo "| --- | --- | --- | --- |"
} >"$summary"

# pack: everything so far into OUT_DIR (written aside, then renamed: a kill never leaves half a tarball).
# tar exits 1 when a file changed while it read it (the clock log grows): the archive is still whole.
pack() {
    cp "$summary" "$work/summary.md"
    tar -czf "$out/.second-contact.tar.gz.part" --warning=no-file-changed -C "$scratch" second-contact
    (($? <= 1)) && mv -f "$out/.second-contact.tar.gz.part" "$tarball"
}

# step NAME BOX LOG COMMAND...: run COMMAND for at most BOX seconds (SIGTERM, SIGKILL 10 s later), log its output,
# write its row and pack. While it runs its row says RUNNING: a call killed from outside shows where it was.
step_pid='' step_name='' step_box=0 step_t0=0
step() {
    local name=$1 box=$2 log=$3 rc outcome
    shift 3
    if [[ $box -le 0 ]]; then
        echo "| $name | 0 | - | NOT RUN (no time box) |" >>"$summary"
        return
    fi
    echo "== $name (box ${box}s)"
    echo "| $name | $box | - | RUNNING (the call ended in this step) |" >>"$summary"
    step_name=$name step_box=$box step_t0=$SECONDS
    # bash -c: COMMAND may be a function of this script; timeout signals its whole process group, pytest included.
    # In the background and waited for, so that a SIGTERM to this script is handled at once (ended).
    timeout -s TERM -k 10 "$box" bash -c '"$@"' "$name" "$@" >"$log" 2>&1 &
    step_pid=$!
    wait "$step_pid"
    rc=$?
    step_pid=
    case $rc in
        0) outcome="ok" ;;
        124 | 137) outcome="TIMED OUT: interrupted at its box; see $(basename "$log") for how far it got" ;;
        *) outcome="exit $rc (see $(basename "$log"))" ;;
    esac
    sed -i '$d' "$summary"
    echo "| $name | $box | $((SECONDS - step_t0)) | $outcome |" >>"$summary"
    tail -n 3 "$log"
    pack
}

# A call ended from outside by SIGTERM (a caller's time limit) or Ctrl-C: the running step gets the SIGTERM too
# (pytest writes the settings it measured), 5 s to finish, then its row says so and everything is packed. A SIGKILL
# leaves the pack of the last step that ended and the RUNNING row.
ended() {
    trap - TERM INT
    if [[ -n $step_pid ]]; then
        kill -TERM "$step_pid" 2>/dev/null  # timeout passes it on to the step's process group
        for _ in {1..10}; do
            kill -0 "$step_pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL -- "-$step_pid" 2>/dev/null
        sed -i '$d' "$summary"
        echo "| $step_name | $step_box | $((SECONDS - step_t0)) | ENDED FROM OUTSIDE: SIGTERM to the script |" >>"$summary"
        pack
    fi
    exit 143
}
trap ended TERM INT

machine() {
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi
        nvidia-smi -q -d CLOCK,POWER,PERFORMANCE,TEMPERATURE,ECC,COMPUTE | head -200
        nvidia-smi topo -m  # which CPUs and NUMA node sit next to the GPU: what pinning should pick
    fi
    lscpu
    "$PYTHON" - "$device" <<'EOF'
import json, os, sys
import torch
from vitcnn import fingerprint
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(),
      "threads", torch.get_num_threads(), "affinity", sorted(os.sched_getaffinity(0)))
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

# bench RUN ARGS...: one pytest process of the benchmarks, its run file runs/RUN.json.
bench() {
    local run=$1
    shift
    "$PYTHON" -m pytest --benchmark-only -q -p no:cacheprovider --vitcnn-device "$device" \
        --vitcnn-precision "$precision" --vitcnn-target-seconds "$target_s" --vitcnn-warmup-seconds "$warmup_s" \
        --benchmark-json "$work/runs/$run.json" "$@"
}

# The two settings of steps 2 and 3: ConvNeXt-B at 1024 px, batch 1 (its calls ran at two speeds on the H200) and
# ViTDet-B/16 at 224 px, batch 32 (the compiled A/A's setting: step 7 then finds its compiled code in the cache).
pair() {
    bench "$1" benchmarks/test_inference.py --vitcnn-profile blog-lite --vitcnn-models "$vitdet,$cnn" \
        --vitcnn-res "$small,$large" --vitcnn-batch "$one,$many" \
        -k "$cnn-${large}px-bs$one- or $vitdet-${small}px-bs$many-" "${@:2}"
}

defaults() {  # blog-lite as a plain run measures it: cold and warm compile, the eager twin
    pair defaults
}

gate_aa() {  # the same two settings, extras off, in two fresh processes: what the stored gate compares
    local rc=0
    pair gate-aa-1 --vitcnn-compile-times off --vitcnn-eager-twin off || rc=$?
    pair gate-aa-2 --vitcnn-compile-times off --vitcnn-eager-twin off || rc=$?
    return "$rc"
}

# host: one session of eager ViT-B/16 at the small resolution and large batch (the H200's A/A setting whose
# processes ran at two speeds), 4 worker processes per side, every block's host state recorded (CPU, waiting, SM
# clock, clock-event reasons). Side A runs unpinned, side B pins each worker (taskset) to a physical core of its
# own. Pinned and unpinned interleaved in one session, not two sessions one after the other: a session spends ~36 s
# starting its workers, and the GPU's state then changes under both sides alike.
host() {
    local cores real
    # one CPU list per physical core (its SMT siblings) of this process's CPUs; CPU 0's core last (interrupts)
    cores=$("$PYTHON" - <<'EOF'
import os
allowed, groups = os.sched_getaffinity(0), {}
for cpu in sorted(allowed):
    try:
        text = open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list").read().strip()
        siblings = set()
        for part in text.split(","):
            low, _, high = part.partition("-")
            siblings.update(range(int(low), int(high or low) + 1))
    except (OSError, ValueError):
        siblings = {cpu}
    group = sorted(siblings & allowed)
    groups[group[0]] = group
print(" ".join(",".join(map(str, g)) for g in sorted(groups.values(), key=lambda g: (0 in g, g))))
EOF
    )
    if ! command -v taskset >/dev/null || ! command -v flock >/dev/null; then
        echo "no taskset or flock on this machine: cannot pin the workers"
        return 3
    fi
    real=$("$PYTHON" -c 'import sys; print(sys.executable)')
    echo 0 >"$work/pinned-next"
    # each worker `vitcnn ab` starts through this takes the next core of VITCNN_PIN_CORES: no two share one
    cat >"$work/pinned-python" <<'EOF'
#!/usr/bin/env bash
read -ra cores <<<"$VITCNN_PIN_CORES"
n=$(flock "$VITCNN_PIN_NEXT" bash -c 'n=$(<"$1"); echo $((n + 1)) >"$1"; echo "$n"' _ "$VITCNN_PIN_NEXT")
echo "pinned-python: worker $n on CPUs ${cores[n % ${#cores[@]}]}" >&2
exec taskset -c "${cores[n % ${#cores[@]}]}" "$VITCNN_PIN_PYTHON" "$@"
EOF
    chmod +x "$work/pinned-python"
    echo "cores for the pinned side: $cores"
    "$PYTHON" -m vitcnn ab --device "$device" --profile blog-lite --models "$vit" --res "$small" --batch "$many" \
        --precision "$precision" --compile eager --processes 4 --first-processes 4 --rounds 4 \
        --b-python "$work/pinned-python" --b-env "VITCNN_PIN_CORES=$cores" --b-env "VITCNN_PIN_NEXT=$work/pinned-next" \
        --b-env "VITCNN_PIN_PYTHON=$real" --markdown "$work/host-ab.md" --json "$work/host-ab.json" \
        --out-dir "$work/host-ab"
    local rc=$?
    if [[ $rc == 1 ]]; then  # not a regression: the question asked
        echo "vitcnn ab exit 1: the pinned side (B) ran slower than the unpinned one"
        return 0
    fi
    return "$rc"
}

train() {  # training steps (both training claims), then inference at the same points (the step/inference factor)
    bench train benchmarks/test_training.py benchmarks/test_inference.py --vitcnn-profile blog-train \
        --vitcnn-models "$vit,$cnn" --vitcnn-res "$small" --vitcnn-batch "$many" --vitcnn-task train,infer \
        --vitcnn-compile "$train_mode"
}

graphs_run() {  # CUDA graphs at 1024 px, batch 1, where the H200's ViTDet calls were launch-bound; ViTDet first
    bench graphs benchmarks/test_inference.py --vitcnn-profile blog-lite --vitcnn-models "$vitdet,$vit,$cnn" \
        --vitcnn-res "$large" --vitcnn-batch "$one" --vitcnn-compile "$graphs_mode" \
        --vitcnn-compile-times off --vitcnn-eager-twin off
}

ab_compiled() {  # A/A of the compiled setting step 2 compiled: GPU noise as the A/B's paired statistics see it
    "$PYTHON" -m vitcnn ab --device "$device" --profile blog-lite --models "$vitdet" --res "$small" \
        --batch "$many" --precision "$precision" --compile default --processes 2 --first-processes 2 --rounds 6 \
        --markdown "$work/ab.md" --json "$work/ab.json" --out-dir "$work/ab"
}

report() {  # CPU only: the checklist, the stored-gate A/A as compare reads it, the host state per process, claims
    local runs=() readable=() first=() gate=() path
    cd "$work" || return 2  # paths in the summary as they lie in the tarball's folder
    # a step killed before pytest's end leaves an empty run file (pytest-benchmark opens it at the start)
    mapfile -t readable < <("$PYTHON" - runs/*.json <<'EOF'
import sys
from vitcnn.runfile import load_run
for path in sys.argv[1:]:
    try:
        load_run(path)
        print(path)
    except Exception as exc:
        print(f"left out: {exc}", file=sys.stderr)
EOF
    )
    for path in "${readable[@]}"; do
        case $path in
            runs/gate-aa-*) gate+=("$path") ;;
            *) first+=("$path") ;;
        esac
    done
    runs=("${first[@]}" "${gate[@]}")
    echo "## Checklist"
    echo
    echo '```'
    if [[ ${#first[@]} -gt 0 ]]; then "$PYTHON" -m vitcnn check ${cold:+"$cold"} "${first[@]}"; fi
    if [[ ${#gate[@]} -gt 0 ]]; then "$PYTHON" -m vitcnn check "${gate[@]}"; fi  # their caches are warm by design
    [[ ${#runs[@]} -gt 0 ]] || echo "no run file: no setting was measured"
    echo '```'
    echo
    echo "## Stored-gate A/A (extras off, two processes; decided offline, this is \`vitcnn compare\`'s reading)"
    echo
    echo '```'
    if [[ ${#gate[@]} -eq 2 ]]; then
        "$PYTHON" -m vitcnn compare "${gate[@]}"
    else
        echo "not both run files: nothing to compare"
    fi
    echo '```'
    echo
    echo "## Host state per process (eager $vit, side A unpinned, side B pinned)"
    echo
    "$PYTHON" - host-ab.json <<'EOF'
import json, statistics, sys
try:
    data = json.load(open(sys.argv[1]))
except (OSError, ValueError) as exc:
    sys.exit(f"no host state: {sys.argv[1]} unreadable ({type(exc).__name__}): the step did not run to its end")
for entry in data["settings"]:
    print(f"{entry['id']}: {', '.join(entry['verdict']['labels'])} (B/A: pinned / unpinned)\n")
    print("| side | process | blocks | median ms | slowest / fastest block | CPUs | SM MHz | clock events | wait share |")
    print("| --- | --- | ---: | ---: | ---: | --- | --- | --- | ---: |")
    units = sorted({(b["side"], b["process"]) for b in entry["blocks"]})
    for side, process in units:
        blocks = [b for b in entry["blocks"] if (b["side"], b["process"]) == (side, process) and b.get("median")]
        if not blocks:
            continue
        medians = [b["median"] for b in blocks]
        hosts = [b.get("host") or {} for b in blocks]
        cpus = sorted({c for h in hosts for c in (h.get("cpus_start") or [])[:1]})
        clocks = [g["sm_clock_mhz"] for h in hosts for key in ("gpu_start", "gpu_end")
                  if (g := h.get(key)) and g.get("sm_clock_mhz") is not None]
        events = sorted({e for h in hosts for key in ("gpu_start", "gpu_end") for e in ((h.get(key) or {})
                         .get("clock_events") or [])})
        waits = [h["wait_share"] for h in hosts if h.get("wait_share") is not None]
        print(f"| {side} | {process} | {len(blocks)} | {statistics.median(medians) * 1e3:.3f} | "
              f"{max(medians) / min(medians):.2f} | {' '.join(map(str, cpus)) or '-'} | "
              f"{f'{min(clocks)}-{max(clocks)}' if clocks else '-'} | {' '.join(events) or '-'} | "
              f"{f'{statistics.median(waits):.1%}' if waits else '-'} |")
EOF
    if [[ ${#runs[@]} -gt 0 ]]; then
        "$PYTHON" -m vitcnn report "${runs[@]}" --out report >report.log 2>&1 || {
            echo "vitcnn report failed: see report.log"
            return 1
        }
        cp report/report.md "$out/"
    fi
}

# The clock and power log, beside every step until the end (killed with the script's exit).
clock_pid=
if [[ $device == cuda ]] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu \
        --format=csv -lms 500 >"$work/clocks.csv" 2>&1 &
    clock_pid=$!
    clock_note="every 500 ms in clocks.csv (SM and memory clock, power, temperature, utilisation)"
else
    clock_note="skipped: no nvidia-smi on this $device machine"
fi
finish() {
    [[ -n $clock_pid ]] && kill "$clock_pid" 2>/dev/null
    rm -rf "$scratch"
}
trap finish EXIT

export -f machine bench pair defaults gate_aa host train graphs_run ab_compiled report
export PYTHON device vit vitdet cnn small large one many precision train_mode graphs_mode target_s warmup_s cold work out
step machine "$box_machine" "$work/machine.txt" machine
step "defaults $cnn ${large}px bs$one, $vitdet ${small}px bs$many" "$box_defaults" "$work/defaults.log" defaults
step "gate A/A (2 processes, extras off)" "$box_gate_aa" "$work/gate-aa.log" gate_aa
step "host state, eager $vit ${small}px bs$many, unpinned vs pinned" "$box_host" "$work/host-ab.log" host
step "train $vit, $cnn ${small}px bs$many ($train_mode)" "$box_train" "$work/train.log" train
note=$([[ $device == cpu ]] && echo ', as reduce-overhead is GPU-only')
step "graphs $vitdet, $vit, $cnn ${large}px bs$one ($graphs_mode$note)" "$box_graphs" "$work/graphs.log" graphs_run
step "ab A/A compiled $vitdet ${small}px bs$many" "$box_ab" "$work/ab.log" ab_compiled
step report "$box_report" "$work/checklist.md" report

runs=("$work"/runs/*.json)
[[ -e ${runs[0]} ]] || runs=()
{
    echo
    echo "total wall: $(($(date +%s) - started)) s; clock and power log: $clock_note"
    echo
    echo "## Not reached"
    echo
    "$PYTHON" - "$device" "$vit" "$vitdet" "$cnn" "$small" "$large" "$one" "$many" "$precision" "$train_mode" \
        "$graphs_mode" "$work" <<'EOF'
import sys
from pathlib import Path
from vitcnn import settings
from vitcnn.runfile import load_run
device, vit, vitdet, cnn, small, large, one, many, precision, train_mode, graphs_mode, work = sys.argv[1:]
small, large, one, many = (int(v) for v in (small, large, one, many))

def ids(profile, keep=lambda s: True, **axes):
    return [s.id for s in settings.profile_settings(profile, device, precisions=[precision], **axes) if keep(s)]

pair = ids("blog-lite", lambda s: (s.model, s.resolution, s.batch) in {(cnn, large, one), (vitdet, small, many)},
           models=[vitdet, cnn], resolutions=[small, large], batches=[one, many])
wanted = {"defaults": pair, "gate-aa-1": pair, "gate-aa-2": pair,
          "train": ids("blog-train", models=[vit, cnn], resolutions=[small], batches=[many], tasks=["train", "infer"],
                       compile_modes=[train_mode]),
          "graphs": ids("blog-lite", models=[vitdet, vit, cnn], resolutions=[large], batches=[one],
                        compile_modes=[graphs_mode])}
missing = []
for name, expected in wanted.items():
    path = Path(work, "runs", f"{name}.json")
    try:
        results = load_run(path).results
    except Exception as exc:  # no file: the step did not run or was killed before pytest wrote it
        missing += [f"- {name}: {i} (no readable run file)" for i in expected]
        continue
    missing += [f"- {name}: {i}" for i in expected if i not in results]
    missing += [f"- {name}: {i} ({r.status}: {r.reason})" for i, r in results.items() if r.status != "ok"]
for name in ("host-ab", "ab"):
    if not Path(work, f"{name}.json").exists():
        missing.append(f"- {name}: no verdicts (the session did not run to its end)")
print("\n".join(missing) or "- every setting of every step has a result with status ok")
EOF
    echo
    if [[ -s $work/checklist.md ]]; then cat "$work/checklist.md"; fi
} >>"$summary" 2>&1

cp "$work/ab.md" "$work/host-ab.md" "$out/" 2>/dev/null
[[ -s $work/clocks.csv ]] && cp "$work/clocks.csv" "$out/"
pack
cat "$summary"
