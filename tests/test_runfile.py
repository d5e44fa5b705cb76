"""Reading run files: clear errors for anything that is not a vitcnn run; slugs come from the fingerprint."""

from __future__ import annotations

import json

import pytest

from tests.factories import CPU_FINGERPRINT, result, run_json, setting
from vitcnn import fingerprint
from vitcnn.runfile import RunFileError, device_label, load_run, parse_run


def test_parse_joins_statuses_and_benchmarks():
    ok, oom = setting("vit_t16"), setting("convnext_atto")
    run = parse_run(run_json([result(ok, samples=[0.01, 0.02, 0.03]), result(oom, status="oom", reason="OOM")]))
    assert run.results[ok.id].samples == [0.01, 0.02, 0.03] and run.results[ok.id].median_s == 0.02
    assert run.results[oom.id].status == "oom" and run.results[oom.id].samples == []
    assert run.profile == "smoke"


def test_slug_is_recomputed_from_the_fingerprint():
    data = run_json([result(setting())])
    data["machine_info"]["vitcnn_slug"] = "stale-name"
    assert parse_run(data).slug == fingerprint.slug(CPU_FINGERPRINT)


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"benchmarks": []}), "not a pytest-benchmark JSON"),
    (json.dumps({"benchmarks": [], "machine_info": {}}), "no vitcnn section"),
])
def test_bad_files_name_themselves(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(RunFileError, match=message) as info:
        load_run(path)
    assert str(path) in str(info.value)


def test_unknown_status_and_missing_file_are_errors(tmp_path):
    data = run_json([result(setting())])
    data["vitcnn"]["settings"][0]["status"] = "exploded"
    with pytest.raises(RunFileError, match="unknown status"):
        parse_run(data)
    with pytest.raises(RunFileError, match="cannot read"):
        load_run(tmp_path / "absent.json")


def test_device_label_says_cpu_measurements_are_cpu():
    assert device_label(CPU_FINGERPRINT) == "CPU measurement: Test CPU, 2 cores"
    assert device_label({"device": "cuda", "gpu_name": "NVIDIA H200"}) == "NVIDIA H200"


def test_derived_numbers_are_computed_once_from_samples_and_flops():
    s = setting(batch=2)
    run = parse_run(run_json([result(s, samples=[0.01, 0.03, 0.02, 0.04], flops=4e10, peak_tflops_matmul=8.0,
                                     peak_tflops_spec=None)]))
    r = run.results[s.id]
    assert r.median_s == pytest.approx(0.025)  # the raw samples' median, not a stored one
    assert r.images_per_s == pytest.approx(2 / 0.025)
    assert r.tflops_per_s == pytest.approx(4e10 / 0.025 / 1e12)
    assert r.mfu("matmul") == pytest.approx(r.tflops_per_s / 8.0) and r.mfu("spec") is None
    status_only = parse_run(run_json([result(s, status="oom", reason="OOM")])).results[s.id]
    assert status_only.median_s is status_only.images_per_s is status_only.tflops_per_s is None


def test_median_history_is_parsed_by_the_reader():
    data = run_json([result(setting())])
    assert parse_run(data).median_history == {}
    data["vitcnn"]["median_history"] = {setting().id: [0.01, "0.02"]}
    assert parse_run(data).median_history == {setting().id: [0.01, 0.02]}
    data["vitcnn"]["median_history"] = {setting().id: [None]}
    with pytest.raises(RunFileError, match="median_history"):
        parse_run(data)
