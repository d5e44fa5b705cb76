#!/usr/bin/env bash
# The regimes experiments (issue 37): A/A sessions of `vitcnn ab` on the settings whose processes ran off their
# twins, one per condition, each alone on the machine; then scripts/regimes.py splits their variance between and
# within processes and correlates the process effects with the host state.
#
#   scripts/regimes-experiments.sh OUT_DIR [CONDITION ...]     # default: every condition, in this order
#
# Conditions: plain (twice), seed (same weights and input in every process), jemalloc and tcmalloc (LD_PRELOAD;
# Debian's libjemalloc2, libtcmalloc-minimal4), arena1 (MALLOC_ARENA_MAX=1), pinned (OMP_PROC_BIND=close,
# OMP_PLACES=cores), noaslr (setarch -R), flushdenormal (denormals flushed to zero in every process),
# mallocdefault (glibc's own malloc policy, --vitcnn-malloc=default: `plain` has the thresholds fixed since
# 2026-12-07, vitcnn/measure/allocator.py). A digit after a name repeats it (plain2, mallocdefault2).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/regimes-experiments.sh OUT_DIR [CONDITION ...]}
shift
mkdir -p "$out"
conditions=("$@")
(( ${#conditions[@]} )) || conditions=(plain plain2 seed jemalloc tcmalloc arena1 pinned noaslr flushdenormal)
python=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
lib=/usr/lib/$(uname -m)-linux-gnu
select=(--models nfnet_tiny,vitdet_t16,vit_t16 --res 64,128 --batch 2 --compile eager --device cpu)
design=(--processes 4 --first-processes 4 --rounds 6)
for condition in "${conditions[@]}"; do
  sides=()
  case "$condition" in
    plain|plain[0-9]) ;;
    seed) sides=(--a-opts=--vitcnn-seed=0 --b-opts=--vitcnn-seed=0) ;;
    jemalloc) sides=(--a-env "LD_PRELOAD=$lib/libjemalloc.so.2" --b-env "LD_PRELOAD=$lib/libjemalloc.so.2") ;;
    tcmalloc) sides=(--a-env "LD_PRELOAD=$lib/libtcmalloc_minimal.so.4" --b-env "LD_PRELOAD=$lib/libtcmalloc_minimal.so.4") ;;
    arena1) sides=(--a-env MALLOC_ARENA_MAX=1 --b-env MALLOC_ARENA_MAX=1) ;;
    pinned|pinned[0-9]) sides=(--a-env OMP_PROC_BIND=close --a-env OMP_PLACES=cores --b-env OMP_PROC_BIND=close
                   --b-env OMP_PLACES=cores) ;;
    noaslr)
      wrapper="$out/python-noaslr"
      printf '#!/bin/sh\nexec setarch "$(uname -m)" -R %s "$@"\n' "$python" > "$wrapper"
      chmod +x "$wrapper"
      sides=(--a-python "$wrapper" --b-python "$wrapper") ;;
    flushdenormal) sides=(--a-opts="-p tests.flush_denormal" --b-opts="-p tests.flush_denormal") ;;
    mallocdefault|mallocdefault[0-9]) sides=(--a-opts=--vitcnn-malloc=default --b-opts=--vitcnn-malloc=default) ;;
    *) echo "unknown condition $condition" >&2; exit 2 ;;
  esac
  echo "== $condition" >&2
  start=$(date +%s)
  "$python" -m vitcnn ab "${select[@]}" "${design[@]}" "${sides[@]}" --json "$out/$condition.json" \
    > "$out/$condition.txt" 2> "$out/$condition.log" || true
  echo "$condition: $(( $(date +%s) - start )) s" >&2
done
"$python" scripts/regimes.py $(for c in "${conditions[@]}"; do echo "$out/$c.json"; done) > "$out/regimes.txt"
cat "$out/regimes.txt"
