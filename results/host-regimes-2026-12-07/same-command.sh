#!/usr/bin/env bash
# One setting of the smoke profile (convnext_atto 128 px bs2 eager) in fresh pytest processes: the same command with
# the environment padded by k bytes (does the heap's layout decide the speed?), then three variants in turn: ASLR off
# (setarch -R), glibc's malloc asking for transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1), plain.
# Prints each process's median (ms). Run from the repository root, alone on the machine.
set -euo pipefail
json=$(mktemp)
one() {  # LABEL COMMAND-PREFIX...
    local label=$1
    shift
    "$@" python3 -m pytest benchmarks -p no:cacheprovider -q -k "convnext_atto and 128px and bs2 and eager" \
        --benchmark-only --benchmark-json "$json" > /dev/null 2>&1
    echo "$label $(python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print(' '.join(
        f\"{b['extra_info']['median_s'] * 1e3:.2f}\" for b in d['benchmarks']))" "$json")"
}
for pass in 1 2; do
    for k in 0 8 16 24 40 64 100 200; do
        one "pass $pass, environment padded by $k bytes:" env PAD="$(head -c "$k" /dev/zero | tr '\0' x)"
    done
done
for i in 1 2 3 4 5 6; do
    one "ASLR off:" setarch -R env
    one "THP for malloc:" env GLIBC_TUNABLES=glibc.malloc.hugetlb=1
    one "plain:" env
done
rm -f "$json"
