"""How one setting is measured (MeasureOptions) and what its profile decides about that (for_profile).

Light on purpose (no torch): vitcnn/options.py builds the pytest options from MeasureOptions' defaults before
pytest parses arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vitcnn import settings

CONVENTIONS = ("strict", "essay")


@dataclass(frozen=True)
class MeasureOptions:
    """How long to warm up and time one setting, and which measurement conventions to follow."""

    target_seconds: float = 1.0  # timed rounds aim for about this much total time
    min_rounds: int = 10
    max_rounds: int = 200
    warmup_calls: int = 3  # at least this many calls after compiling (CUDA-graph recording needs >= 2)
    warmup_seconds: float = 1.0  # CPU runs still speed up over their first ~0.5 s; GPU clocks ramp too
    inference_mode: bool = True  # False keeps autograd state: the gate's planted memory regression
    seed: int | None = None  # torch's RNG seeded before the model and input are built (None: not seeded)
    conventions: str = "strict"  # "essay": cuDNN TF32 on in fp32 and FLOPs without attention (docs/measuring.md)
    device_time_rounds: int = 10  # CUDA: calls timed with events for gpu_time_s / gpu_busy
    # Compiled settings only; None: the profile decides (settings.Profile.compile_extras), see for_profile.
    compile_times: bool | None = None  # cold and warm compile time (compiling.compile_extras): 1-2 extra compiles
    eager_twin: bool | None = None  # speedup over eager and memory compression (twin.py): ~SECONDS more timing
    # False only in a counting worker under callgrind (vitcnn/workers/counting.py): no FLOP count, no references
    # and no output check there, as a plain worker compiled and checked the same cached graph first.
    checks: bool = True
    # False in an A/B's processes after a side's first (vitcnn/ab/driver.py): the first one's count stands for the
    # side, the others' (~0.3 s of a ~1 s eager setup on the 2-core VM) were never read. Their output is still checked.
    count_flops: bool = True


def for_profile(options: MeasureOptions, profile: str) -> MeasureOptions:
    """`options` with what the profile decides: its conventions, and whether compiled settings measure cold and
    warm compile time and an eager twin (unless the options say so explicitly)."""
    chosen = settings.profile(profile)
    conventions = chosen.conventions if chosen.conventions != "strict" else options.conventions
    extras = chosen.compile_extras
    return replace(options, conventions=conventions,
                   compile_times=extras if options.compile_times is None else options.compile_times,
                   eager_twin=extras if options.eager_twin is None else options.eager_twin)
