"""Run the real benchmark suite in a subprocess, as a user would, for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Settings with enough work per call (~0.1 s) that separate runs agree within ~10% on a 2-vCPU VM at 2 threads,
# while 1 thread is 1.5-2.3x slower (measured on this machine kind): a real planted slowdown, well apart from noise.
# Smaller workloads (~15 ms) varied by up to 1.4x between identical runs at 2 threads.
GATE_SUBSET = ("--vitcnn-models", "vit_t16,convnext_atto", "--vitcnn-res", "256", "--vitcnn-batch", "4",
               "--vitcnn-compile", "eager", "--vitcnn-target-seconds", "2", "--vitcnn-min-rounds", "15")
CPU_TOLERANCE = ("--vitcnn-tolerance", "0.25", "--vitcnn-alpha", "0.01")


# A scheduler's shard index in the environment would make every run below a shard: the tests run whole selections.
SHARD_VARIABLES = ("SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX")


def run_benchmarks(*args: str, env: dict | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    """`python -m pytest benchmarks --benchmark-only ARGS` from the repository root; output captured."""
    command = [sys.executable, "-m", "pytest", "benchmarks", "--benchmark-only", "-p", "no:cacheprovider", *args]
    base = {k: v for k, v in os.environ.items() if k not in SHARD_VARIABLES}
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**base, **(env or {})})
