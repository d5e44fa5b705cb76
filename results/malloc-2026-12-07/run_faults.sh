#!/usr/bin/env bash
# Fresh processes, the two malloc policies alternating (ABBA), each alone on the machine.
cd "$(dirname "$0")"
for i in 1 2 3 4 5 6; do
  if (( i % 2 )); then order=(fixed default); else order=(default fixed); fi
  for mode in "${order[@]}"; do python3 faults_per_call.py "$mode" 2>/dev/null; done
done
