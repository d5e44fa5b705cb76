"""Run the real benchmark suite in a subprocess, as a user would, for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The gate's end-to-end tests compare separate pytest runs, and separate runs of one setting on a shared 2-vCPU VM
# differ by up to ~1.8x (measured on this machine kind). So these tests check the wiring (pytest -> run JSON ->
# baseline -> verdicts -> exit code), not the statistics: the tolerance allows 3x, far above that noise, and the
# planted slowdown is 10x (tests/force_failure.py VITCNN_FORCE_SLOW), far above the tolerance. The statistics are
# tested on synthetic data in tests/gate/test_rules.py (and the A/B statistics in tests/gate/test_paired.py).
GATE_SUBSET = ("--vitcnn-models", "vit_t16,convnext_atto", "--vitcnn-res", "64", "--vitcnn-batch", "1",
               "--vitcnn-compile", "eager", "--vitcnn-target-seconds", "0.3", "--vitcnn-min-rounds", "20")
CPU_TOLERANCE = ("--vitcnn-tolerance", "2.0", "--vitcnn-alpha", "0.01")


# A scheduler's shard index in the environment would make every run below a shard: the tests run whole selections.
SHARD_VARIABLES = ("SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX")


def _without_compile_extras(args: tuple[str, ...]) -> list[str]:
    """Cold/warm compile times and the eager twin cost ~20 s per compiled setting on 2 cores: off in end-to-end
    tests unless a test turns them on (tests/test_plugin.py has the one that does)."""
    return [x for option in ("--vitcnn-compile-times", "--vitcnn-eager-twin") if option not in args
            for x in (option, "off")]


def run_benchmarks(*args: str, env: dict | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    """`python -m pytest benchmarks --benchmark-only ARGS` from the repository root; output captured."""
    command = [sys.executable, "-m", "pytest", "benchmarks", "--benchmark-only", "-p", "no:cacheprovider",
               *_without_compile_extras(args), *args]
    base = {k: v for k, v in os.environ.items() if k not in SHARD_VARIABLES}
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**base, **(env or {})})
