"""Series over commits (vitcnn/history/series.py): which runs make a machine, which runs are left out, several
runs of one commit as their median, and commit order."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.factories import (
    CPU_FINGERPRINT,
    LEGACY_CPU_FINGERPRINT,
    S1,
    S2,
    amx_machine,
    non_amx_machine,
    result,
    run_json,
)
from vitcnn import fingerprint
from vitcnn.history.series import METRICS, build, machine_key
from vitcnn.runfile import Run, parse_run

REPO = Path(__file__).resolve().parents[2]
# first-format fingerprint + py-cpuinfo record (AMX VM)
FIRST_FORMAT = REPO / "results" / "cpu" / "2026-11-22" / "shard-1.json"
COMPLETE = REPO / "results" / "cpu-smoke" / "run.json"  # complete fingerprint, measured on that VM later


def commit_id(n: int) -> str:
    return f"{n:040x}"


def run(commit: int | None, when: str, median: float = 0.01, fp: dict | None = None, dirty: bool = False,
        **extra) -> Run:
    """A one-setting run (S1) of `commit` at commit time `when` whose samples all equal `median`."""
    data = run_json([result(S1, [median] * 5, **extra)], fp)
    data["commit_info"] = {} if commit is None else {"id": commit_id(commit), "time": when, "dirty": dirty}
    data["datetime"] = when
    return parse_run(data)


def keyed(*runs: Run) -> list[tuple[str, Run]]:
    return [(f"key{i}", r) for i, r in enumerate(runs)]


def latency(series_list) -> list:
    return [s for s in series_list if s.metric.name == "latency"]


# ---------------------------------------------------------------------------------------------------- machines


def test_a_complete_fingerprint_is_its_own_slug():
    complete = run(1, "2026-01-01T00:00:00")
    assert machine_key(complete, {}) == complete.slug == fingerprint.slug(CPU_FINGERPRINT)
    other = run(1, "2026-01-01T00:00:00", fp={**CPU_FINGERPRINT, "torch_threads": 1})
    assert machine_key(other, {complete.slug: complete.fingerprint}) == other.slug != complete.slug


def first_format_run(strip_amx: bool = False, **fingerprint_changes) -> Run:
    data = json.loads(FIRST_FORMAT.read_text())
    data["machine_info"]["vitcnn_fingerprint"].update(fingerprint_changes)
    if strip_amx:
        data["machine_info"]["cpu"]["flags"] = [f for f in data["machine_info"]["cpu"]["flags"]
                                                if not f.startswith("amx")]
    return parse_run(data, str(FIRST_FORMAT))


@pytest.mark.parametrize("complete", ["the committed complete run", "amx_machine()"])
def test_a_first_format_run_joins_the_complete_machine_it_provably_is(complete):
    """results/cpu/2026-11-22/shard-1.json (first format, py-cpuinfo flags of the AMX VM) is the machine of the
    committed smoke run (complete fingerprint, same VM): same legacy identity and the same kernel features."""
    full = json.loads(COMPLETE.read_text())["machine_info"]["vitcnn_fingerprint"] if complete.startswith("the") \
        else amx_machine()
    assert machine_key(first_format_run(), {fingerprint.slug(full): full}) == fingerprint.slug(full)


@pytest.mark.parametrize("why", ["non-AMX machine of the same name", "py-cpuinfo flags without AMX",
                                 "another torch", "no py-cpuinfo record"])
def test_a_first_format_run_stays_apart_when_the_match_is_not_proven(why):
    full = non_amx_machine() if why.startswith("non-AMX") else amx_machine()
    legacy = first_format_run(strip_amx=why.startswith("py-cpuinfo"),
                              **({"torch": "2.13.0"} if why == "another torch" else {}))
    if why == "no py-cpuinfo record":
        del legacy.raw["machine_info"]["cpu"]
    assert machine_key(legacy, {fingerprint.slug(full): full}) == legacy.slug


def test_first_format_and_complete_runs_of_one_machine_make_one_series():
    """The same VM before and after the fingerprint's version 2: shard-1 as written, then the same settings with
    the complete fingerprint (amx_machine) at a later commit; every setting is one series of two commits."""
    old = json.loads(FIRST_FORMAT.read_text())
    new = copy.deepcopy(old)
    new["machine_info"]["vitcnn_fingerprint"] = amx_machine()
    for data, commit, when in ((old, 1, "2026-01-01T00:00:00+00:00"), (new, 2, "2026-01-02T00:00:00+00:00")):
        data["commit_info"] = {"id": commit_id(commit), "time": when, "dirty": False}
    built = latency(build(keyed(parse_run(old), parse_run(new))))
    assert {s.machine for s in built} == {fingerprint.slug(amx_machine())}
    assert len(built) == len(old["benchmarks"]) and all(len(s.points) == 2 for s in built)


def test_a_first_format_run_without_a_complete_match_keeps_its_own_series():
    legacy = run(1, "2026-01-01T00:00:00", fp=LEGACY_CPU_FINGERPRINT)
    complete = run(2, "2026-01-02T00:00:00")
    built = latency(build(keyed(legacy, complete)))
    assert sorted((s.machine, len(s.points)) for s in built) == sorted([(legacy.slug, 1), (complete.slug, 1)])


# ------------------------------------------------------------------------------------------ what is left out


def test_dirty_runs_and_runs_without_a_commit_are_left_out():
    built = latency(build(keyed(run(1, "2026-01-01T00:00:00"), run(2, "2026-01-02T00:00:00", 0.05, dirty=True),
                                run(None, "2026-01-03T00:00:00", 0.07), run(3, "2026-01-04T00:00:00", 0.02))))
    [series] = built
    assert [p.commit for p in series.points] == [commit_id(1), commit_id(3)]
    assert series.values == [0.01, 0.02]


def test_failed_settings_and_unmeasured_metrics_make_no_points():
    data = run_json([result(S1, [0.01] * 5, activation_peak_bytes=4 * 2**20),
                     result(S2, status="oom", reason="out of memory")])
    data["commit_info"] = {"id": commit_id(1), "time": "2026-01-01T00:00:00", "dirty": False}
    built = build(keyed(parse_run(data)))
    assert {(s.setting_id, s.metric.name) for s in built} == {(S1.id, "latency"), (S1.id, "activation_memory")}
    only = build(keyed(parse_run(data)), metrics=["activation_memory"])
    assert [(s.metric.name, s.values) for s in only] == [("activation_memory", [4 * 2**20])]


# ---------------------------------------------------------------------------------- medians and commit order


def test_several_runs_of_one_commit_are_their_median_with_the_count():
    runs = keyed(run(1, "2026-01-01T00:00:00", 0.010), run(1, "2026-01-01T00:00:00", 0.030),
                 run(1, "2026-01-01T00:00:00", 0.011), run(2, "2026-01-02T00:00:00", 0.012))
    [series] = latency(build(runs))
    first, second = series.points
    assert first.value == pytest.approx(0.011) and sorted(first.values) == pytest.approx([0.010, 0.011, 0.030])
    assert first.run_keys == ["key0", "key1", "key2"]
    assert (second.value, second.run_keys) == (0.012, ["key3"])


def test_points_follow_commit_time_not_the_order_runs_were_given():
    # a backfill measures old commits after new ones: the run order is not the commit order
    runs = keyed(run(3, "2026-01-03T00:00:00", 0.03), run(1, "2026-01-01T00:00:00", 0.01),
                 run(2, "2026-01-02T00:00:00", 0.02))
    [series] = latency(build(runs))
    assert [p.commit for p in series.points] == [commit_id(1), commit_id(2), commit_id(3)]
    assert series.values == [0.01, 0.02, 0.03]


def test_commit_order_is_by_instant_whatever_the_committers_time_zone():
    runs = keyed(run(2, "2026-01-01T09:00:00+00:00", 0.02), run(1, "2026-01-01T10:00:00+02:00", 0.01))
    [series] = latency(build(runs))
    assert [p.commit for p in series.points] == [commit_id(1), commit_id(2)]


def test_each_metric_reads_its_number():
    data = run_json([result(S1, [0.01, 0.03, 0.02], activation_peak_bytes=3 * 2**20, compile_time_s=7.5,
                            compile_cache="miss")])
    data["commit_info"] = {"id": commit_id(1), "time": "2026-01-01T00:00:00", "dirty": False}
    built = {s.metric.name: s for s in build(keyed(parse_run(data)))}
    assert set(built) == {"latency", "activation_memory", "compile_time"}
    assert built["latency"].values == [0.02]  # the median of the raw samples
    assert built["activation_memory"].values == [3 * 2**20]
    assert built["compile_time"].values == [7.5]
    assert built["latency"].values[0] * METRICS["latency"].scale == pytest.approx(20.0)  # ms
    assert built["activation_memory"].values[0] * METRICS["activation_memory"].scale == 3.0  # MiB


@pytest.mark.parametrize("verdict, metric", [("miss", "compile_time"), ("hit", "compile_time_warm"),
                                             ("partial", None), ("n/a", None)])
def test_cold_and_warm_compiles_are_never_one_series(verdict, metric):
    """A compile served from the cache is a different quantity from a cold one: a warm commit after cold ones
    would read as a huge improvement (and the next cold one as a regression)."""
    data = run_json([result(S1, [0.01] * 3, compile_time_s=7.5, compile_cache=verdict)])
    data["commit_info"] = {"id": commit_id(1), "time": "2026-01-01T00:00:00", "dirty": False}
    compile_series = [s.metric.name for s in build(keyed(parse_run(data))) if s.metric.name.startswith("compile")]
    assert compile_series == ([metric] if metric else [])
