"""Split one sweep into N shards that schedulers run in parallel: which settings shard K of N measures.

The index comes from the scheduler that already exists (`--vitcnn-shard=K/N`, a Slurm job array, a Kubernetes
indexed Job, a CI matrix), never from a scheduler of our own. Every shard computes the same partition on its own,
so the partition must depend only on the selection: settings are sorted canonically (estimated cost, then id) and
assigned greedily to the least-loaded shard (longest processing time first). That makes shards of one selection
disjoint, covering, independent of pytest's collection order, and balanced by cost rather than by count: the most
loaded shard carries at most the mean load plus the single most expensive setting.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from vitcnn.settings import Setting

SOURCES = ("option", "slurm", "k8s")
K8S_COUNT_VARIABLE = "VITCNN_SHARD_COUNT"  # Kubernetes puts only the index in the environment, not the count

# A rough model of one setting's wall time on a nominal GPU, in seconds. It only needs to rank settings and add up
# sensibly, and it must be the same on every shard, so it depends on the setting alone (never on the machine).
FIXED_S = 3.0  # build, eager reference, FLOP count, the default 1 s warm-up and 1 s of timing
COMPILE_S = {"eager": 0.0, "default": 30.0, "reduce-overhead": 40.0, "max-autotune": 150.0}
NOMINAL_TFLOPS = {"fp32": 25.0, "tf32": 100.0, "bf16": 200.0, "fp16": 200.0}
CALLS_PER_SETTING = 20  # compile check, SDPA probe, >= 3 warm-up and >= 10 timed calls, FLOP count, ...


class ShardError(ValueError):
    """A shard that cannot be run as asked (bad K/N, inconsistent scheduler environment, too many shards)."""


@dataclass(frozen=True)
class ShardSpec:
    """Shard `index` (1-based) of `count`, and where that came from ("option", "slurm" or "k8s")."""

    index: int
    count: int
    source: str = "option"

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ShardError(f"shard index must be between 1 and the shard count {self.count}, got {self.index}")

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"


def parse(text: str, source: str = "option") -> ShardSpec:
    """`K/N` (1-based, e.g. `2/4`) as a ShardSpec; anything else is a ShardError that shows the expected form."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match:
        raise ShardError(f"--vitcnn-shard takes K/N with 1 <= K <= N (e.g. 2/4), got {text!r}")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 1 <= index <= count:
        raise ShardError(f"--vitcnn-shard takes K/N with 1 <= K <= N (e.g. 2/4), got {text!r}")
    return ShardSpec(index, count, source)


def _int_variable(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except KeyError:
        raise ShardError(f"{name} is not set") from None
    except ValueError:
        raise ShardError(f"{name} must be an integer, got {env[name]!r}") from None


def from_slurm(env: Mapping[str, str]) -> ShardSpec:
    """The shard of a Slurm job array task: position of SLURM_ARRAY_TASK_ID in MIN..MAX (step STEP).

    Works for `--array=1-N` and `--array=0-(N-1)` (and evenly stepped ranges); an array with gaps (`--array=1,3,7`)
    is refused because its tasks cannot all know the same N and their own position.
    """
    task = _int_variable(env, "SLURM_ARRAY_TASK_ID")
    low = _int_variable(env, "SLURM_ARRAY_TASK_MIN")
    high = _int_variable(env, "SLURM_ARRAY_TASK_MAX")
    step = _int_variable(env, "SLURM_ARRAY_TASK_STEP") if "SLURM_ARRAY_TASK_STEP" in env else 1
    count = _int_variable(env, "SLURM_ARRAY_TASK_COUNT") if "SLURM_ARRAY_TASK_COUNT" in env else None
    if step < 1 or high < low or (high - low) % step or (task - low) % step or not low <= task <= high:
        raise ShardError(f"Slurm array task {task} is not in an evenly stepped range {low}-{high}:{step}; "
                         f"submit with --array=1-N or pass --vitcnn-shard=K/N")
    span = (high - low) // step + 1
    if count is not None and count != span:
        raise ShardError(f"the Slurm array has {count} tasks but spans {low}-{high}:{step} ({span} indices): "
                         f"it has gaps; submit with --array=1-N or pass --vitcnn-shard=K/N")
    return ShardSpec((task - low) // step + 1, span, "slurm")


def from_kubernetes(env: Mapping[str, str]) -> ShardSpec:
    """The shard of a Kubernetes indexed Job pod: JOB_COMPLETION_INDEX (0-based) and VITCNN_SHARD_COUNT.

    The Job's `completions` is not in the pod's environment, so the count must be given beside it.
    """
    index = _int_variable(env, "JOB_COMPLETION_INDEX")
    if K8S_COUNT_VARIABLE not in env:
        raise ShardError(f"JOB_COMPLETION_INDEX={index} is set but {K8S_COUNT_VARIABLE} is not: set it to the "
                         f"Job's completions (Kubernetes does not put the count in the environment), or pass "
                         f"--vitcnn-shard=K/N")
    count = _int_variable(env, K8S_COUNT_VARIABLE)
    if count < 1 or not 0 <= index < count:
        raise ShardError(f"JOB_COMPLETION_INDEX={index} must be in 0..{K8S_COUNT_VARIABLE}-1 ({count - 1})")
    return ShardSpec(index + 1, count, "k8s")


def resolve(option: str | None, env: Mapping[str, str] | None = None) -> ShardSpec | None:
    """The shard to run: the option if given (it wins over the environment), else a Slurm array task, else a
    Kubernetes indexed Job pod, else None (the whole selection)."""
    env = os.environ if env is None else env
    if option:
        return parse(option)
    if "SLURM_ARRAY_TASK_ID" in env:
        return from_slurm(env)
    if "JOB_COMPLETION_INDEX" in env:
        return from_kubernetes(env)
    return None


# ------------------------------------------------------------------------------------------------------ the cost


@functools.lru_cache(maxsize=None)
def flops_per_image(model: str, resolution: int) -> float:
    """FLOPs of one image through `model`, counted on the meta device (no memory, no weights, ~0.2 s).

    SDPA is counted (with vitcnn.flops' formulas where the installed torch has none), so the quadratic cost of
    global attention at high resolution is included.
    A model whose count fails falls back to resolution² (the same on every shard, so the partition still agrees).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from vitcnn.measure import flops
    from vitcnn.zoo import models

    try:
        try:
            with torch.device("meta"):
                module = models.build(model, resolution)
        except Exception:  # some timm versions call .item() while building, which meta tensors cannot do
            module = models.build(model, resolution)
        x = torch.empty(1, 3, resolution, resolution, device=next(module.parameters()).device)
        with FlopCounterMode(display=False, custom_mapping=flops.missing_formulas()) as counter, torch.no_grad():
            module(x)
        return float(counter.get_total_flops())
    except Exception:
        return float(resolution * resolution * 1e4)


def estimated_seconds(setting: Setting, flops: Callable[[str, int], float] = flops_per_image) -> float:
    """Rough seconds the setting takes on a nominal GPU: fixed overhead, compilation, and the timed calls once a
    call is slow enough that the minimum number of rounds, not the time budget, decides."""
    per_call = flops(setting.model, setting.resolution) * setting.batch / (NOMINAL_TFLOPS[setting.precision] * 1e12)
    return FIXED_S + COMPILE_S.get(setting.compile_mode, COMPILE_S["default"]) + CALLS_PER_SETTING * per_call


# ------------------------------------------------------------------------------------------------- the partition


def selection_digest(ids: Iterable[str]) -> str:
    """sha256 of the sorted, distinct setting ids: equal for every shard of one selection, whatever the order."""
    return hashlib.sha256("\n".join(sorted(set(ids))).encode()).hexdigest()


def partition(items: Iterable[Setting], count: int,
              cost: Callable[[Setting], float] = estimated_seconds) -> list[list[Setting]]:
    """`count` disjoint lists covering the distinct items, balanced by `cost` (greedy, longest first).

    Items are sorted by (-cost, id) first, so the result does not depend on the input order; ties between equally
    loaded shards go to the lowest index. Each list keeps that canonical order.
    """
    if count < 1:
        raise ShardError(f"the shard count must be >= 1, got {count}")
    distinct = {item.id: item for item in items}
    costs = {key: float(cost(item)) for key, item in distinct.items()}
    order = sorted(distinct, key=lambda key: (-costs[key], key))
    shards: list[list[Setting]] = [[] for _ in range(count)]
    loads = [(0.0, i) for i in range(count)]  # (load, shard) as a min-heap
    for key in order:
        load, i = heapq.heappop(loads)
        shards[i].append(distinct[key])
        heapq.heappush(loads, (load + costs[key], i))
    return shards


def apply(selected: list[Setting], spec: ShardSpec,
          cost: Callable[[Setting], float] = estimated_seconds) -> list[Setting]:
    """The part of `selected` that shard `spec` runs, in the selection's own order. More shards than distinct
    settings is a ShardError: an empty shard would write no run for the merge to find."""
    distinct = {s.id for s in selected}
    if spec.count > len(distinct):
        raise ShardError(f"shard {spec.label}: only {len(distinct)} settings are selected; "
                         f"use at most {len(distinct)} shards")
    mine = {s.id for s in partition(selected, spec.count, cost)[spec.index - 1]}
    return [s for s in selected if s.id in mine]


def record(spec: ShardSpec, selected: list[Setting], mine: list[Setting]) -> dict:
    """The run JSON's `vitcnn.shard` section: which shard this is, and the selection it is a part of, so
    `python -m vitcnn merge` can check that shards fit together and nothing is missing."""
    return {
        "index": spec.index, "count": spec.count, "source": spec.source,
        "selection_size": len({s.id for s in selected}), "selection_sha256": selection_digest(s.id for s in selected),
        "ids": sorted({s.id for s in mine}),
    }


def describe(section: dict) -> str:
    """One line for the terminal, e.g. 'vitcnn: shard 2/3 (slurm): 11 of 32 selected settings'."""
    return (f"vitcnn: shard {section['index']}/{section['count']} ({section['source']}): "
            f"{len(section['ids'])} of {section['selection_size']} selected settings")
