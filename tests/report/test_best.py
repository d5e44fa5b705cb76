"""Grouping runs by machine and the best setting per model x resolution x batch (vitcnn/report/best.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import setting
from tests.report.helpers import failed, make_run, ok
from vitcnn.report import best as rp
from vitcnn.runfile import Result


def test_best_is_fastest_ok_setting_and_counts_candidates():
    run = make_run(ok("vit_b16", 224, ms=5, precision="bf16"), ok("vit_b16", 224, ms=4, precision="fp16"),
                   failed("vit_b16", 224, precision="fp32", status="error", reason="boom"))
    best = rp.best_settings(run.results)[("vit_b16", 224, 1)]
    assert best.result.setting.precision == "fp16"
    assert best.latency_s == pytest.approx(0.004)
    assert best.images_per_s == pytest.approx(250)
    assert (best.candidates, best.ok_count, best.status) == (3, 2, "ok")


def test_tie_goes_to_smallest_setting_id():
    a, b = ok("vit_b16", 224, ms=5, precision="fp16"), ok("vit_b16", 224, ms=5, precision="bf16")
    best = rp.best_settings(make_run(a, b).results)[("vit_b16", 224, 1)]
    ids = sorted([a["status_entry"]["id"], b["status_entry"]["id"]])
    assert best.result.id == ids[0] and best.ties == (ids[1],)
    # the order of the input does not change the winner
    assert rp.best_settings(make_run(b, a).results)[("vit_b16", 224, 1)].result.id == ids[0]


def test_all_failed_point_shows_its_status():
    run = make_run(failed("vit_b16", 1024, status="oom", reason="out of memory"),
                   failed("vit_b16", 1024, precision="fp16", status="oom"),
                   failed("convnext_b", 1024, status="oom"), failed("convnext_b", 1024, precision="fp16", status="error"))
    bests = rp.best_settings(run.results)
    vit, cnn = bests[("vit_b16", 1024, 1)], bests[("convnext_b", 1024, 1)]
    assert not vit.ok and vit.status == "oom" and vit.reason == "out of memory" and vit.candidates == 2
    assert not cnn.ok and cnn.status == "oom/error"


def test_missing_points_are_absent_not_invented():
    bests = rp.best_settings(make_run(ok("vit_b16", 224), ok("convnext_b", 512, batch=8)).results)
    assert set(bests) == {("vit_b16", 224, 1), ("convnext_b", 512, 8)}


def test_fairness_notes_flag_unequal_candidate_counts():
    equal = make_run(ok("vit_b16", 224), ok("convnext_b", 224))
    assert rp.fairness_notes(rp.best_settings(equal.results)) == []
    unequal = make_run(ok("vit_b16", 224), ok("convnext_b", 224), ok("convnext_b", 224, precision="fp16"))
    [note] = rp.fairness_notes(rp.best_settings(unequal.results))
    assert "224 px, batch 1" in note and "ViTs had 1" in note and "CNNs 2" in note


POOL = [setting("vit_t16", res, batch, precision, sdpa=sdpa, compile_mode=mode)
        for res in (64, 128) for batch in (1, 2) for precision in ("fp32", "bf16")
        for sdpa in ("auto", "math") for mode in ("eager", "default")]


@st.composite
def result_sets(draw):
    """Distinct settings with random statuses and medians (ties likely: medians come from a small set)."""
    chosen = draw(st.lists(st.sampled_from(POOL), unique=True, min_size=1, max_size=len(POOL)))
    out = []
    for s in chosen:
        status = draw(st.sampled_from(["ok", "ok", "oom", "error", "skipped"]))
        median = draw(st.sampled_from([0.001, 0.002, 0.003, 0.005])) if status == "ok" else None
        out.append(Result(s, status, stats={"median": median} if median else {}))
    return out


@settings(max_examples=150, deadline=None)
@given(result_sets())
def test_best_invariants(results):
    bests = rp.best_settings(results)
    assert set(bests) == {(r.setting.model, r.setting.resolution, r.setting.batch) for r in results}
    for point, best in bests.items():
        here = [r for r in results if (r.setting.model, r.setting.resolution, r.setting.batch) == point]
        oks = [r for r in here if r.status == "ok"]
        assert best.candidates == len(here) and best.ok_count == len(oks)
        if not oks:
            assert best.result is None and best.status != "ok"
            continue
        assert best.result.status == "ok"  # never a failed setting
        assert all(best.latency_s <= r.median_s for r in oks)  # never slower than any ok candidate
        fastest = [r.id for r in oks if r.median_s == best.latency_s]
        assert best.result.id == min(fastest)  # deterministic tie-break
        assert set(best.ties) == set(fastest) - {best.result.id}


def test_same_device_runs_merge_later_wins(tmp_path):
    first = make_run(ok("vit_b16", 224, ms=10), ok("convnext_b", 224, ms=5), path="a.json")
    second = make_run(ok("vit_b16", 224, ms=2), path="b.json")
    [device] = rp.group_runs([first, second])
    sid = setting("vit_b16", 224, 1, "bf16", sdpa="flash", compile_mode="default").id
    assert device.results[sid].median_s == pytest.approx(0.002)
    assert len(device.results) == 2 and device.paths == ["a.json", "b.json"]
