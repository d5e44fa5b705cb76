"""vitcnn/site/machines.py: which runs are a machine's newest, and how several runs of one commit merge."""

from __future__ import annotations

from tests.factories import CPU_FINGERPRINT, result, run_json, setting
from tests.history.planted import fake_commit
from tests.site.conftest import OTHER_MACHINE, SMOKE_MACHINE
from vitcnn.history import series
from vitcnn.history.store import content_key, entry_of
from vitcnn.runfile import parse_run
from vitcnn.site.machines import machines, merge_results, newest_runs

VIT = setting()
CNN = setting(model="convnext_atto")


def stored(results: list[dict], commit: str | None, when: str, dirty: bool = False, fp: dict | None = None):
    """(Entry, Run) as the store would hold a run of `results` at `commit`, committed and run at `when`."""
    data = run_json(results, fp)
    data["commit_info"] = {"id": commit, "time": when, "dirty": dirty} if commit else {}
    data["datetime"] = when
    run = parse_run(data)
    return entry_of(run, content_key(data), "test"), run


def test_the_planted_store_has_two_machines_the_newest_measured_first(planted_store):
    found = machines(list(planted_store.runs()))
    assert [m.key for m in found] == [SMOKE_MACHINE, OTHER_MACHINE]
    smoke = found[0]
    assert smoke.commit == fake_commit(13) and len(smoke.runs) == 14 and len(smoke.newest) == 1
    assert smoke.results.keys() == smoke.newest[0][1].results.keys()
    assert smoke.label == "CPU measurement: Intel(R) Xeon(R) Processor, 2 cores, with AMX"
    assert found[1].label == "CPU measurement: Intel(R) Xeon(R) Processor, 4 cores, with AMX"


def test_the_site_names_the_machines_the_history_series_name(planted_store):
    runs = list(planted_store.runs())
    assert {m.key for m in machines(runs)} == {s.machine for s in series.build((e.key, r) for e, r in runs)}


def test_runs_of_the_newest_commit_merge_to_the_median_run_per_setting():
    runs = [stored([result(VIT, [s] * 5), result(CNN, [10 * s] * 5)], "c2", f"2026-01-02T0{i}:00:00")
            for i, s in enumerate((0.030, 0.010, 0.020))]
    older = stored([result(VIT, [0.5] * 5)], "c1", "2026-01-01T00:00:00")
    (machine,) = machines([older, *runs])
    assert [e.commit for e, _ in machine.newest] == ["c2"] * 3
    assert machine.results[VIT.id].median_s == 0.020  # the middle one of 0.010, 0.020, 0.030
    assert machine.results[CNN.id].median_s == 0.200
    assert machine.results[VIT.id] is runs[2][1].results[VIT.id]  # a real result, not a blend


def test_an_even_number_of_runs_keeps_the_lower_middle_and_a_failure_never_wins():
    ok_fast, ok_slow = parse_run(run_json([result(VIT, [0.01] * 5)])), parse_run(run_json([result(VIT, [0.02] * 5)]))
    oom = parse_run(run_json([result(VIT, status="oom", reason="out of memory")]))
    assert merge_results([ok_slow, oom, ok_fast])[VIT.id].median_s == 0.01
    only_failed = merge_results([oom, parse_run(run_json([result(VIT, status="error", reason="boom")]))])
    assert only_failed[VIT.id].status == "error"  # the newest run's account of the failure


def test_a_dirty_run_or_one_without_a_commit_is_not_merged_with_others():
    clean = stored([result(VIT, [0.01] * 5)], "c1", "2026-01-01T00:00:00")
    dirty = stored([result(VIT, [0.02] * 5)], "c1", "2026-01-01T01:00:00", dirty=True)
    assert newest_runs([clean, dirty]) == [dirty]
    loose = [stored([result(VIT, [s] * 5)], None, f"2026-01-02T0{i}:00:00") for i, s in enumerate((0.01, 0.02))]
    assert newest_runs([clean, *loose]) == [loose[1]]


def test_machines_are_keyed_as_the_history_keys_them():
    other_fp = {**CPU_FINGERPRINT, "cpu_count": 4}
    a = stored([result(VIT, [0.01] * 5)], "c1", "2026-01-01T00:00:00")
    b = stored([result(VIT, [0.01] * 5)], "c1", "2026-01-03T00:00:00", fp=other_fp)
    found = machines([a, b])
    assert [m.key for m in found] == [b[1].slug, a[1].slug] and a[1].slug != b[1].slug
