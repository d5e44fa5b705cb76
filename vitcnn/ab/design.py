"""What one `vitcnn ab` session is: its sides, settings, design (processes, rounds, order) and statistics.

Light on purpose (no torch, numpy or scipy): the command line builds its parser from ABOptions' defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from vitcnn.ab.sides import Side
from vitcnn.explain import DEFAULT_CALLS
from vitcnn.gate.metrics import INSTRUCTIONS
from vitcnn.settings import Setting

MIN_CALLS = 3  # a block's median needs a few calls
# Each process times the setting alone for this long after setting it up (worker "calibrate"): blocks and lead-ins
# are sized from it, not from the warm-up, which ran beside the other processes' setups.
CALIBRATION_SECONDS = 0.05
# A session's design on the 2-core AMD EPYC VM (docs/results.md, "One look at four processes, twelve rounds",
# 2026-12-07): 8 rounds of 3 processes per side and a 4th process where unsettled (two looks, each at alpha / 2)
# left half the rows of a smoke A/A inconclusive (median detectable 5-6%): most settings needed the 4th process
# anyway, and the second look paid for the first. One look at 4 processes with 12 rounds times fewer blocks than
# that (96 per setting, not 112), spends alpha once and averages out more of the blocks' noise (about 70% of an
# 8-round process effect's variance there): at alpha 0.025 per direction (the old design's rate of false `slower` in
# synthetic sessions, 2.8%) it caught 22 of 24 planted 5% slowdowns, the old one 16. The setups dominate the wall time;
# their warm-up is ~0.5 s, what a CPU run needs to reach its speed (measure/options.py), each block still having its
# lead-in.
TARGET_SECONDS = 0.5
WARMUP_SECONDS = 0.5
METRICS = ("time", "instructions")


@dataclass(frozen=True)
class ABOptions:
    """One A/B session: the two sides, the settings (A's view; a side's axis options replace fields for it),
    the design (processes per side, rounds per stage) and the statistics. Values out of range are a ValueError
    that names the command-line option."""

    a: Side
    b: Side
    settings: list[Setting]
    profile: str
    device: str | None = None
    threads: int | None = None
    processes: int = 4  # at most, per side
    fresh_processes: bool = True  # each setting in new forks of a template process per side (vitcnn/ab/pools.py)
    first: int = 4  # processes per side in stage 1 (fewer than `processes`: a sequential design, a look per stage)
    rounds: int = 12  # rounds per stage (each process times one block per round)
    threshold: float = 0.03
    alpha: float = 0.025  # per direction (BH across settings): either direction falsely in <= 5% of A/A sessions
    detect: float = 0.05  # a `same` must have resolved this slowdown (80% power), else `inconclusive`
    machine_time: bool = True  # process effects in machine time where every block has a speed probe (paired.py)
    target_seconds: float = TARGET_SECONDS  # timed seconds per side and setting in stage 1
    markdown: Path | None = None
    json_path: Path | None = None
    out_dir: Path | None = None
    metric: str = "time"  # or "instructions": counted under Callgrind, no timing (vitcnn/ab/counted.py)
    instructions_tolerance: float = INSTRUCTIONS.parameters[0].default
    explain: bool = True  # profile every `slower` setting once more per side afterwards (vitcnn/ab/explaining.py)
    explain_calls: int = DEFAULT_CALLS  # calls profiled per side
    repo: Path | None = None  # the git repository a side's ref is checked out from (None: this project)

    def __post_init__(self) -> None:
        if not 2 <= self.first <= self.processes:
            raise ValueError("need 2 <= --first-processes <= --processes: a side's spread between processes "
                             "needs two")
        if self.rounds < 2:
            raise ValueError("--rounds must be >= 2")
        if not self.target_seconds > 0:
            raise ValueError("--target-seconds must be > 0")
        if not 0 < self.alpha < 1 or not self.threshold >= 0 or not self.detect > 0:
            raise ValueError("--alpha must be in (0, 1), --threshold >= 0 and --detect > 0")
        if not self.instructions_tolerance >= 0:
            raise ValueError("--instructions-tolerance must be >= 0")
        if self.explain_calls < 1:
            raise ValueError("--explain-calls must be >= 1")
        if self.metric not in METRICS:
            raise ValueError(f"--metric must be one of {', '.join(METRICS)}, got {self.metric!r}")

    @property
    def looks(self) -> int:
        """Looks the sequential design allows per setting: one per stage."""
        return self.processes - self.first + 1

    def worker_args(self) -> list[str]:
        """The options every worker of the session starts with (device, threads, profile, warm-up); a side adds
        its own after them, which win."""
        return [*(["--vitcnn-device", self.device] if self.device else []),
                *(["--vitcnn-threads", str(self.threads)] if self.threads else []),
                "--vitcnn-profile", self.profile, "--vitcnn-warmup-seconds", str(WARMUP_SECONDS)]


def pair_order(p: int) -> str:
    """"AB" or "BA" for pair p: the Thue-Morse sequence (parity of the number of one bits of p)."""
    return "BA" if bin(p).count("1") % 2 else "AB"


def calls_per_block(per_call_s: list[float], target_seconds: float, blocks: int) -> int:
    """Calls per block so that the slowest process spends about target_seconds / blocks per block."""
    slowest = max(max(per_call_s), 1e-6)
    return max(MIN_CALLS, math.ceil(target_seconds / blocks / slowest))
