"""Shards: K/N parsing, the index from Slurm and Kubernetes, and the partition's invariants (property tests)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from vitcnn import settings
from vitcnn.scale import shard
from vitcnn.scale.shard import ShardError, ShardSpec

POOL = sorted(set(settings.profile_settings("blog", "cuda") + settings.profile_settings("smoke", "cpu")))


# ------------------------------------------------------------------------------------------------ K/N and the env

@pytest.mark.parametrize("text, expected", [("1/1", (1, 1)), ("2/4", (2, 4)), (" 3 / 3 ", (3, 3))])
def test_parse_accepts_k_of_n(text, expected):
    spec = shard.parse(text)
    assert (spec.index, spec.count, spec.source) == (*expected, "option")


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "3", "a/b", "-1/2", "1/2/3", ""])
def test_parse_refuses_anything_else(text):
    with pytest.raises(ShardError, match="K/N"):
        shard.parse(text)


@pytest.mark.parametrize("env, expected", [
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "4",
      "SLURM_ARRAY_TASK_COUNT": "4"}, (3, 4)),
    ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "3",
      "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_STEP": "1"}, (1, 4)),
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "7",
      "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_COUNT": "4"}, (3, 4)),  # --array=1-7:2
    ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "2", "SLURM_ARRAY_TASK_MAX": "2"}, (1, 1)),
])
def test_slurm_array_task_is_its_position_in_the_range(env, expected):
    spec = shard.resolve(None, env)
    assert (spec.index, spec.count, spec.source) == (*expected, "slurm")


@pytest.mark.parametrize("env, message", [
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "7",
      "SLURM_ARRAY_TASK_COUNT": "3"}, "gaps"),  # --array=1,3,7
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MAX": "4"}, "SLURM_ARRAY_TASK_MIN is not set"),
    ({"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "4"}, "must be an integer"),
    ({"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "4"}, "not in"),
])
def test_slurm_arrays_that_do_not_map_to_k_of_n_are_refused(env, message):
    with pytest.raises(ShardError, match=message):
        shard.resolve(None, env)


def test_kubernetes_index_needs_the_count_beside_it():
    spec = shard.resolve(None, {"JOB_COMPLETION_INDEX": "0", "VITCNN_SHARD_COUNT": "3"})
    assert (spec.index, spec.count, spec.source) == (1, 3, "k8s")
    with pytest.raises(ShardError, match="VITCNN_SHARD_COUNT is not"):
        shard.resolve(None, {"JOB_COMPLETION_INDEX": "0"})
    with pytest.raises(ShardError, match="0..VITCNN_SHARD_COUNT-1"):
        shard.resolve(None, {"JOB_COMPLETION_INDEX": "3", "VITCNN_SHARD_COUNT": "3"})


def test_the_option_wins_over_the_environment_and_nothing_means_no_shard():
    env = {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "2"}
    assert shard.resolve("1/3", env) == ShardSpec(1, 3, "option")
    assert shard.resolve(None, {}) is None


# ------------------------------------------------------------------------------------------------- the partition

selections = st.lists(st.sampled_from(POOL), min_size=1, max_size=80)


def _loads(shards, cost):
    return [sum(cost(s) for s in part) for part in shards]


@hsettings(max_examples=200, deadline=None)
@given(data=st.data(), selection=selections, count=st.integers(1, 9))
def test_shards_are_disjoint_cover_the_selection_and_ignore_its_order(data, selection, count):
    unique = sorted({s.id for s in selection})
    costs = data.draw(st.fixed_dictionaries({i: st.floats(0.01, 1e4) for i in unique}))
    cost = lambda s: costs[s.id]  # noqa: E731
    shards = shard.partition(selection, count, cost)
    ids = [s.id for part in shards for s in part]
    assert len(shards) == count
    assert len(ids) == len(set(ids))  # disjoint
    assert set(ids) == set(unique)  # covering
    shuffled = data.draw(st.permutations(selection))
    assert [[s.id for s in part] for part in shard.partition(shuffled, count, cost)] == \
        [[s.id for s in part] for part in shards]


@hsettings(max_examples=200, deadline=None)
@given(data=st.data(), selection=selections, count=st.integers(1, 9))
def test_shards_are_balanced_within_one_setting_of_the_mean(data, selection, count):
    """Greedy least-loaded assignment: the last setting put on the fullest shard went to the emptiest one, so the
    fullest shard carries at most total/N + the largest single cost."""
    unique = sorted({s.id for s in selection})
    costs = data.draw(st.fixed_dictionaries({i: st.floats(0.01, 1e4) for i in unique}))
    cost = lambda s: costs[s.id]  # noqa: E731
    loads = _loads(shard.partition(selection, count, cost), cost)
    assert max(loads) <= sum(costs.values()) / count + max(costs.values()) + 1e-6


def test_cost_balance_beats_count_balance_for_a_skewed_selection():
    """One expensive compiled setting and many cheap eager ones: by cost, the expensive one gets a shard to itself."""
    heavy = settings.Setting("vit_b16", 1024, 32, "fp32", "math", "max-autotune", "nchw")
    light = [s for s in settings.profile_settings("smoke", "cpu") if s.compile_mode == "eager"]
    parts = shard.partition([heavy] + light, 2)
    assert [heavy] in parts


def test_apply_keeps_the_selection_order_and_refuses_more_shards_than_settings():
    selected = settings.profile_settings("smoke", "cpu")
    cost = lambda s: 1.0  # noqa: E731
    mine = shard.apply(selected, ShardSpec(2, 3), cost)
    assert mine == [s for s in selected if s in mine] and 0 < len(mine) < len(selected)
    with pytest.raises(ShardError, match=f"at most {len(selected)} shards"):
        shard.apply(selected, ShardSpec(1, len(selected) + 1), cost)


def test_record_names_the_shard_and_a_digest_of_the_whole_selection():
    selected = settings.profile_settings("smoke", "cpu")
    spec = ShardSpec(1, 2, "slurm")
    mine = shard.apply(selected, spec, lambda s: 1.0)
    section = shard.record(spec, selected, mine)
    assert section["index"] == 1 and section["count"] == 2 and section["source"] == "slurm"
    assert section["selection_size"] == len(selected) == 24 and section["ids"] == sorted(s.id for s in mine)
    assert section["selection_sha256"] == shard.selection_digest(reversed([s.id for s in selected]))
    assert "shard 1/2 (slurm): 12 of 24" in shard.describe(section)


# ------------------------------------------------------------------------------------------------------ the cost

def test_estimated_cost_grows_with_compilation_resolution_batch_and_fp32():
    flops = lambda model, res: 1e9 * (res / 224) ** 2  # noqa: E731
    base = settings.Setting("convnext_b", 512, 8, "bf16", "none", "default", "channels_last")
    cost = lambda s: shard.estimated_seconds(s, flops)  # noqa: E731
    from dataclasses import replace
    assert cost(replace(base, compile_mode="eager")) < cost(base) < cost(replace(base, compile_mode="max-autotune"))
    assert cost(base) < cost(replace(base, resolution=1024)) and cost(base) < cost(replace(base, batch=32))
    assert cost(base) < cost(replace(base, precision="fp32"))


def test_flops_are_counted_on_the_meta_device_including_attention():
    """Global attention makes ViT-B's FLOPs grow faster than resolution²; ConvNeXt's grow about as resolution²."""
    vit = shard.flops_per_image("vit_b16", 1024) / shard.flops_per_image("vit_b16", 224)
    cnn = shard.flops_per_image("convnext_b", 1024) / shard.flops_per_image("convnext_b", 224)
    area = (1024 / 224) ** 2
    assert vit > 1.5 * area and cnn == pytest.approx(area, rel=0.1)
