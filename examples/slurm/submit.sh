#!/usr/bin/env bash
# Submit a sharded vitcnn sweep to Slurm: an array job of N shards, then a merge job that waits for all of them.
#   examples/slurm/submit.sh N OUT_DIR [PYTEST ARGS...]
#   e.g. examples/slurm/submit.sh 8 results/blog-h100 --vitcnn-profile blog
# Optional: VITCNN_COMPILE_CACHE=/shared/vitcnn-compile-cache to start warm from earlier runs.
# Optional: VITCNN_SLURM_GRES, the generic resource each shard asks for (default gpu:1; set it empty on a CPU-only
#   cluster, which refuses a GPU request), and VITCNN_SLURM_CPUS, the CPUs per shard (default: sweep.sbatch's 8).
# The merge uses afterany, not afterok: a shard whose setting failed still wrote a valid run (status "error"), and
# the merge itself refuses, naming them, shards that wrote nothing.
set -euo pipefail

if (( $# < 2 )); then
  echo "usage: $0 N OUT_DIR [PYTEST ARGS...]" >&2
  exit 2
fi
shards=$1
out=$2
shift 2
if ! [[ "$shards" =~ ^[1-9][0-9]*$ ]]; then
  echo "N must be a positive integer, got '$shards'" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
if compgen -G "${out}/shard-*.json" > /dev/null || [[ -e "${out}/run.json" ]]; then
  echo "${out} already holds a sweep; choose a new OUT_DIR (nothing is overwritten)" >&2
  exit 2
fi

resources=()
gres=${VITCNN_SLURM_GRES-gpu:1}
if [[ -n "$gres" ]]; then
  resources+=("--gres=${gres}")
fi
if [[ -n "${VITCNN_SLURM_CPUS:-}" ]]; then
  resources+=("--cpus-per-task=${VITCNN_SLURM_CPUS}")
fi

array_job=$(sbatch --parsable --array="1-${shards}" --output="${out}/shard-%a.log" ${resources[@]+"${resources[@]}"} \
  "${here}/sweep.sbatch" "$out" "$@")
array_job=${array_job%%;*}  # --parsable prints "jobid" or "jobid;cluster"
merge_job=$(sbatch --parsable --dependency="afterany:${array_job}" --output="${out}/merge.log" \
  "${here}/merge.sbatch" "$out")
merge_job=${merge_job%%;*}
echo "submitted array job ${array_job} (${shards} shards) and merge job ${merge_job}; results in ${out}/run.json"
