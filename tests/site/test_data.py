"""vitcnn/site/data.py: the essay view plots vitcnn's own numbers of the best setting per point; the history pages
mark the change points `history check` finds, where they are; file names are safe."""

from __future__ import annotations

import json
import re

import pytest

from tests.factories import make_run, result, setting
from tests.history.planted import fake_commit
from tests.site.conftest import (
    HELD_SETTING,
    OTHER_MACHINE,
    PLANTED_RANGE,
    PLANTED_SETTING,
    SMOKE_MACHINE,
    STEP_AT,
)
from vitcnn.history import check, series
from vitcnn.history.store import entry_of
from vitcnn.report.analysis import analyse
from vitcnn.site import data
from vitcnn.site.machines import Machine, machines
from vitcnn.table import MIB
from vitcnn.zoo import models


@pytest.fixture(scope="module")
def store_machines(planted_store) -> list[Machine]:
    return machines(list(planted_store.runs()))


@pytest.fixture(scope="module")
def histories(planted_store) -> list[data.SettingHistory]:
    built = series.build((e.key, run) for e, run in planted_store.runs())
    return data.setting_histories(built, check.findings(built))


def group(essay: dict, **choice) -> dict:
    (found,) = [g for g in essay["groups"] if all(g[k] == v for k, v in choice.items())]
    return found


def trace(g: dict, metric: str, name: str) -> dict:
    (found,) = [t for t in g["traces"][metric] if t["name"] == name]
    return found


# ---------------------------------------------------------------------------------------------------- essay view


def test_the_essay_offers_every_combination_the_runs_have_per_machine(store_machines):
    essay = data.essay(store_machines)
    assert essay["axes"] == ["machine", "task", "batch", "precision", "compile_mode"]
    smoke = {(g["task"], g["batch"], g["precision"], g["compile_mode"]) for g in essay["groups"]
             if g["machine"] == SMOKE_MACHINE}
    assert smoke == {("infer", b, "fp32", m) for b in (1, 2) for m in ("eager", "default")}
    other = {(g["task"], g["batch"]) for g in essay["groups"] if g["machine"] == OTHER_MACHINE}
    assert other == {("infer", 1), ("infer", 8), ("train", 1)}
    assert set(essay["machines"]) == {SMOKE_MACHINE, OTHER_MACHINE}
    json.dumps(essay, allow_nan=False)  # embeddable as it is


def test_essay_points_are_the_results_own_derived_numbers(store_machines):
    smoke = store_machines[0]
    g = group(data.essay(store_machines), machine=SMOKE_MACHINE, task="infer", batch=2, precision="fp32",
              compile_mode="default")
    r = {res: smoke.results[f"vit_t16-{res}px-bs2-fp32-auto-default"] for res in (64, 128)}
    assert g["resolutions"] == [64, 128]
    assert trace(g, "throughput", "vit_t16")["y"] == [r[64].images_per_s, r[128].images_per_s]
    assert trace(g, "latency", "vit_t16")["y"] == [r[64].median_s * 1e3, r[128].median_s * 1e3]
    assert trace(g, "activation_memory", "vit_t16")["y"] == [r[64].activation_peak_bytes / MIB,
                                                              r[128].activation_peak_bytes / MIB]
    assert trace(g, "flops", "vit_t16")["y"] == [r[64].flops / 1e9, r[128].flops / 1e9]
    assert trace(g, "mfu", "vit_t16 (vs measured matmul)")["y"] == [100 * r[64].mfu("matmul"),
                                                                    100 * r[128].mfu("matmul")]
    assert trace(g, "latency", "vit_t16")["text"] == [r[64].id, r[128].id]
    # A CPU has no datasheet peak: no "vs spec peak" line rather than a made-up one
    assert not [t for t in g["traces"]["mfu"] if "spec" in t["name"]]
    assert {t["name"] for t in g["traces"]["latency"]} == {"vit_t16", "vitdet_t16", "convnext_atto", "nfnet_tiny"}


def test_each_point_is_the_fastest_setting_over_the_other_axes_and_failures_are_listed():
    fast, slow = setting(sdpa="math"), setting(sdpa="auto")
    cnn_oom = setting(model="convnext_atto")
    run = make_run(result(fast, [0.010] * 5), result(slow, [0.020] * 5),
                   result(cnn_oom, status="oom", reason="CUDA out of memory"))
    machine = Machine("m", [], [(entry_of(run, "k", "test"), run)], run.results)
    g = data.essay([machine])["groups"][0]
    assert trace(g, "latency", "vit_t16")["y"] == [10.0] and trace(g, "latency", "vit_t16")["text"] == [fast.id]
    assert g["failures"] == ["convnext_atto at 64 px: oom (CUDA out of memory)"]
    assert not [t for t in g["traces"]["latency"] if t["legendgroup"] == "convnext_atto"]


def test_training_groups_plot_the_training_figures_with_flops_and_mfu(store_machines):
    essay = data.essay(store_machines)
    assert essay["task_metrics"]["train"] == ["train_throughput", "train_step_time", "train_memory", "flops", "mfu"]
    g = group(essay, machine=OTHER_MACHINE, task="train", batch=1, precision="bf16", compile_mode="default")
    assert trace(g, "train_step_time", "convnext_b")["x"] == [224, 384]
    assert set(g["traces"]) == set(essay["task_metrics"]["train"])


def test_the_toggles_name_real_model_families():
    for key, _, prefix in data.TOGGLES:
        assert [m for m in models.names() if m.startswith(prefix)], key
    assert {m for m in models.names() if m.startswith("vitdet_")} == {"vitdet_b16", "vitdet_t16"}


def test_claims_are_checked_as_the_report_checks_them(store_machines):
    smoke = store_machines[0]
    (report,) = analyse([smoke.latest_run])
    assert data.claims(smoke) == report.claims


# ------------------------------------------------------------------------------------------------ history pages


def test_the_planted_step_is_marked_at_the_planted_commits(histories):
    (page,) = [h for h in histories if h.machine == SMOKE_MACHINE and h.setting_id == PLANTED_SETTING]
    assert [c for c, _ in page.commits] == [fake_commit(i) for i in range(14)]
    figures = {f["div"]: f for f in data.history_figures(page)}
    assert list(figures) == ["plot-latency", "plot-activation_memory", "plot-instructions"]  # eager: no compile
    latency = figures["plot-latency"]
    (shape,) = latency["layout"]["shapes"]
    assert shape["x0"] == shape["x1"] == STEP_AT - 0.5
    assert shape["line"]["color"] == "#d62728"  # a confirmed regression
    (note,) = latency["layout"]["annotations"]
    assert note["x"] == STEP_AT - 0.5
    assert re.fullmatch(re.escape(PLANTED_RANGE) + r" \+1[2-7]\.\d%<br>REGRESSION<br>confirmed by instructions "
                        r"\+1[4-6]\.\d\d%", note["text"]), note["text"]
    (counted,) = figures["plot-instructions"]["layout"]["annotations"]
    assert counted["text"].endswith("<br>REGRESSION<br>confirmed by itself (deterministic)")
    assert latency["layout"]["xaxis"]["ticktext"] == [fake_commit(i)[:7] for i in range(14)]
    assert latency["data"][0]["x"] == list(range(14))
    assert f"commit {fake_commit(0)}" in latency["data"][0]["text"][0] and "1 run(s)" in latency["data"][0]["text"][0]
    levels = latency["data"][-1]
    assert levels["name"] == "segment level (median)"
    assert levels["y"][0] < levels["y"][3] / 1.1  # the second segment's level is the higher one
    assert figures["plot-activation_memory"]["layout"]["shapes"] == []


def test_a_planted_step_with_flat_counts_is_marked_grey_with_its_label(histories):
    (page,) = [h for h in histories if h.machine == SMOKE_MACHINE and h.setting_id == HELD_SETTING]
    latency = {f["div"]: f for f in data.history_figures(page)}["plot-latency"]
    (shape,) = latency["layout"]["shapes"]
    (note,) = latency["layout"]["annotations"]
    assert shape["line"]["color"] == note["font"]["color"] == "#7f7f7f"
    assert re.fullmatch(re.escape(PLANTED_RANGE) + r" \+1[2-7]\.\d%<br>regression \(not confirmed\)<br>machine "
                        r"drift, not confirmed \(instructions flat, [+-]0\.\d\d%\)", note["text"]), note["text"]
    assert not page.failing


def test_an_unplanted_setting_has_no_change_point(histories):
    (page,) = [h for h in histories if h.setting_id == "convnext_atto-64px-bs1-fp32-nchw-eager"]
    assert page.findings == []
    assert all(f["layout"]["annotations"] == [] for f in data.history_figures(page))


def test_verdict_words_are_the_history_checks(histories):
    found = [f for h in histories for f in h.findings]
    assert found and data.verdicts(found) == [row[0] for row in check.rows(found)]
    assert data.confirmations(found) == [row[-1] for row in check.rows(found)]
    assert set(data.verdicts(found)) == {"REGRESSION", "regression (not confirmed)"}


def test_every_setting_page_has_a_safe_unique_path(histories):
    paths = [h.path for h in histories]
    assert len(set(paths)) == len(paths) == 32 + 14
    assert all(re.fullmatch(r"settings/[a-z0-9_][a-z0-9_.-]*/[a-z0-9_][a-z0-9_.-]*\.html", p) for p in paths)


@pytest.mark.parametrize("text", ["../../etc/passwd", "A Setting", ".hidden", "x" * 300, "a/b", "", "ü-ö"])
def test_an_unsafe_name_becomes_a_safe_one_that_does_not_collide(text):
    name = data.safe_name(text)
    assert re.fullmatch(r"[a-z0-9_][a-z0-9_.-]{0,99}", name) and name != text
    assert data.safe_name(text + "!") != name


def test_a_safe_name_is_kept():
    assert data.safe_name(PLANTED_SETTING) == PLANTED_SETTING
    assert data.safe_name(SMOKE_MACHINE) == SMOKE_MACHINE
