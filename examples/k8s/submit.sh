#!/usr/bin/env bash
# Run a sharded vitcnn sweep as a Kubernetes indexed Job, then merge it: the counterpart of examples/slurm/submit.sh.
#   examples/k8s/submit.sh N SWEEP [PYTEST ARGS...]
#   e.g. examples/k8s/submit.sh 8 blog-h100 --vitcnn-profile blog
# Creates the Job vitcnn-sweep-SWEEP from sweep-job.yaml, with completions, parallelism and VITCNN_SHARD_COUNT set
# to N and PYTEST ARGS as the pods' args (the selection). Kubernetes has no dependencies between Jobs, so this script
# stays and plays Slurm's `afterany`: it waits until the sweep has finished, completed or failed, then creates
# vitcnn-merge-SWEEP from merge-job.yaml, waits for it and prints its log. Everything lands in sweeps/SWEEP/ on the
# claim vitcnn-results (results-pvc.yaml, created once beforehand): shard-<index>.json, run.json, report/.
# Exit 0: every shard and the merge succeeded; 1: a shard failed, the merged run names it; 2: usage error, or the
# merge failed (its log says why).
# Optional: VITCNN_K8S_POLL_S, the seconds between two looks at a Job's status (default 30). kubectl's current
# context and namespace are used (kubectl config set-context --current --namespace=...).
set -euo pipefail

if (( $# < 2 )); then
  echo "usage: $0 N SWEEP [PYTEST ARGS...]" >&2
  exit 2
fi
shards=$1
sweep=$2
shift 2
if ! [[ "$shards" =~ ^[1-9][0-9]*$ ]]; then
  echo "N must be a positive integer, got '$shards'" >&2
  exit 2
fi
# SWEEP names the Jobs and their pods (vitcnn-sweep-SWEEP-<index> must stay a 63-character DNS label) and the
# sweep's directory: lower-case letters, digits and '-'.
if ! [[ "$sweep" =~ ^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$ ]]; then
  echo "SWEEP must be 1-40 lower-case letters, digits or '-' (not at either end), got '$sweep'" >&2
  exit 2
fi
poll=${VITCNN_K8S_POLL_S:-30}
here=$(cd "$(dirname "$0")" && pwd)
sweep_job="vitcnn-sweep-${sweep}"
merge_job="vitcnn-merge-${sweep}"

yaml_list() {  # ARGS...: a YAML flow sequence of JSON-style double-quoted strings
  local out="" arg
  for arg in "$@"; do
    arg=${arg//\\/\\\\}
    arg=${arg//\"/\\\"}
    arg=${arg//$'\n'/\\n}
    arg=${arg//$'\t'/\\t}
    out+="${out:+, }\"${arg}\""
  done
  printf '[%s]' "$out"
}
pytest_args=$(yaml_list "$@")

render() {  # FILE JOB EXPECTED: FILE with this sweep's Job name, SWEEP, N and PYTEST ARGS; refuses a changed layout
  local file=$1 job=$2 expected=$3 line hits=0
  local name_re='^( *name: )vitcnn-(sweep|merge)-[a-z0-9-]+$'
  local count_re='^( *(completions|parallelism): )[0-9]+$'
  local shard_count_re='^( *- \{name: VITCNN_SHARD_COUNT, value: )"[0-9]+"\}$'
  local sweep_re='^( *- \{name: VITCNN_SWEEP, value: )"[a-z0-9-]+"\}$'
  local args_re='^( *args: )\[.*\]$'
  while IFS= read -r line || [[ -n "$line" ]]; do
    if [[ "$line" =~ $name_re ]]; then
      line="${BASH_REMATCH[1]}${job}"; hits=$((hits + 1))
    elif [[ "$line" =~ $count_re ]]; then
      line="${BASH_REMATCH[1]}${shards}"; hits=$((hits + 1))
    elif [[ "$line" =~ $shard_count_re ]]; then
      line="${BASH_REMATCH[1]}\"${shards}\"}"; hits=$((hits + 1))
    elif [[ "$line" =~ $sweep_re ]]; then
      line="${BASH_REMATCH[1]}\"${sweep}\"}"; hits=$((hits + 1))
    elif [[ "$job" == "$sweep_job" && "$line" =~ $args_re ]]; then
      line="${BASH_REMATCH[1]}${pytest_args}"; hits=$((hits + 1))
    fi
    printf '%s\n' "$line"
  done < "$file"
  if (( hits != expected )); then
    echo "$file: set $hits of the $expected lines this script fills in; keep their one-line form as shipped" >&2
    return 1
  fi
}

finished() {  # JOB: wait until the Job has finished; prints Complete or Failed
  local types
  while true; do
    if ! types=$(kubectl get job "$1" -o 'jsonpath={.status.conditions[?(@.status=="True")].type}'); then
      echo "kubectl get job $1 failed; trying again in ${poll} s" >&2
      types=""
    fi
    case " ${types} " in
      *" Complete "*) echo Complete; return ;;
      *" Failed "*) echo Failed; return ;;
    esac
    sleep "$poll"
  done
}

sweep_manifest=$(render "${here}/sweep-job.yaml" "$sweep_job" 6) || exit 2
merge_manifest=$(render "${here}/merge-job.yaml" "$merge_job" 2) || exit 2
# create, not apply: a Job of that name already there is refused, and nothing of an earlier sweep is replaced.
printf '%s\n' "$sweep_manifest" | kubectl create -f -
echo "created ${sweep_job} (${shards} shards); waiting for it to finish"
sweep_state=$(finished "$sweep_job")
if [[ "$sweep_state" == Failed ]]; then
  failed=$(kubectl get job "$sweep_job" -o 'jsonpath={.status.failedIndexes}') || failed=""
  echo "${sweep_job} failed (failed indexes: ${failed:-unknown}); merging what its shards wrote" >&2
fi
printf '%s\n' "$merge_manifest" | kubectl create -f -
merge_state=$(finished "$merge_job")
kubectl logs "job/${merge_job}" || true
if [[ "$merge_state" != Complete ]]; then
  echo "${merge_job} failed: see its log above" >&2
  exit 2
fi
echo "merged run in sweeps/${sweep}/run.json and its report in sweeps/${sweep}/report/ on the claim vitcnn-results"
if [[ "$sweep_state" != Complete ]]; then
  exit 1
fi
