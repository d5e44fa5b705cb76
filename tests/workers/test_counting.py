"""Instruction counts under a real callgrind (vitcnn/workers/counting.py, vitcnn/ab/counted.py,
vitcnn/measure/instructions.py): an A/A is never
flagged, a planted extra matmul always is, and the pytest plugin records counts of a compiled setting whose graph
came from the cache (marker `valgrind`: skipped, with the reason, where valgrind is not installed); and what a
count adds to a result."""

from __future__ import annotations

import json

import pytest

from tests.factories import setting
from tests.pytest_runs import run_benchmarks
from vitcnn import cli
from vitcnn.measure import instructions
from vitcnn.result import Result
from vitcnn.runfile import load_run
from vitcnn.workers import SideError, counting
from vitcnn.workers.checkout import Checkout
from vitcnn.workers.process import Launch, WorkerProcess

needs_valgrind = [pytest.mark.valgrind, pytest.mark.slow,
                  pytest.mark.skipif(instructions.unavailable_reason() is not None,
                                     reason=str(instructions.unavailable_reason()))]


def under_valgrind(test):
    for mark in needs_valgrind:
        test = mark(test)
    return test

EAGER = ("--models", "vit_t16", "--res", "64", "--batch", "1", "--compile", "eager", "--device", "cpu")
PLANT = ("--b-env", "VITCNN_PLANT_MATMUL=1", "--b-opts=-p tests.plant_matmul")


@under_valgrind
def test_ab_by_instructions_finds_the_planted_matmul_in_a_convnet_and_names_its_gemm(tmp_path, capsys):
    """A ConvNeXt here; a ViT's planted matmul, and an A/A that reads `same` within 0.5%, are counted by the
    bisect by instructions (tests/test_bisect.py), whose probes are such sessions."""
    code = cli.main(["ab", "--metric", "instructions", *EAGER, "--models", "convnext_atto", *PLANT,
                     "--json", str(tmp_path / "ab.json"), "--markdown", str(tmp_path / "ab.md")])
    out = capsys.readouterr().out
    assert code == 1, out
    data = json.loads((tmp_path / "ab.json").read_text())
    [entry] = data["settings"]
    # counted, and the planted matmuls' FLOPs counted beside them
    assert data["metric"] == "instructions" and entry["verdict"]["labels"] == ["instructions-up", "flops-up"], entry
    a, b = (entry["counted"][side]["instructions_per_call"] for side in "AB")
    assert b > a * 1.03, entry  # about +8% FLOPs planted in every block
    grown = entry["explanation"]["changes"][0]  # from the counted dumps: the GEMM kernel that ran the matmul
    assert "gemm" in grown["name"] and grown["b"] > grown["a"], entry["explanation"]
    markdown = (tmp_path / "ab.md").read_text()
    assert "instructions-up" in markdown and "#### Why convnext_atto-64px-bs1-fp32-nchw-eager moved: " in markdown


@under_valgrind
def test_a_worker_that_is_not_under_callgrind_refuses_to_count(tmp_path):
    worker = WorkerProcess(Launch("A"), Checkout(None), ["--vitcnn-device", "cpu", "--vitcnn-warmup-seconds", "0"],
                           tmp_path / "w.log")
    try:
        worker.request("hello")
        assert worker.request("setup", setting=setting().as_dict())["status"] == "ok"
        reply = worker.request("count", calls=1)
        assert reply["status"] == "error" and "not a counting process" in reply["reason"]
    finally:
        worker.close()


@under_valgrind
def test_the_plugin_counts_a_compiled_setting_from_the_graph_it_compiled_first(tmp_path):
    out = tmp_path / "run.json"
    done = run_benchmarks("--vitcnn-metric", "instructions", "--vitcnn-models", "vit_t16", "--vitcnn-res", "64",
                          "--vitcnn-batch", "1", "--vitcnn-compile", "default", "--vitcnn-target-seconds", "0.1",
                          f"--benchmark-json={out}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = next(iter(load_run(out).results.values()))
    assert result.get("instructions_per_call") > 1e6
    assert result.get("instructions_compile_cache") == "hit"  # the plain worker's compile, loaded
    assert result.get("instructions_check_max_rel_err") is not None  # which the plain worker checked
    assert result.get("instructions_error") is None and result.median_s > 0  # timed as always
    assert "instructions of 1 setting(s) counted under callgrind" in done.stdout


def test_counting_without_valgrind_is_refused_with_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(instructions.shutil, "which", lambda tool: None)
    with pytest.raises(SideError, match="apt-get install valgrind"):
        counting.Counter(Launch("A"), Checkout(None), [], tmp_path)


def test_a_counted_result_carries_the_checked_graphs_numbers_and_the_loaded_graphs_verdict():
    checked = {"flops": 1e9, "check_max_rel_err": 1e-6, "compile_cache": "miss", "compile_time_s": 9.0}
    reply = {"info": {"compile_cache": "hit", "compile_time_s": 30.0},
             "counted": {"instructions_per_call": 2e7, "instructions_calls": 2, "instructions_source": "callgrind"}}
    info = counting.counted_info(checked, reply)
    assert info["flops"] == 1e9 and info["compile_time_s"] == 30.0
    assert info["instructions_compile_cache"] == "hit" and info["instructions_check_max_rel_err"] == 1e-6
    fields = counting.counted_fields(Result(setting(), "ok", info=info))
    assert fields["instructions_per_call"] == 2e7 and fields["instructions_error"] is None
    assert "flops" not in fields  # the timed run's own fields stay the timed run's


def test_a_setting_that_could_not_be_counted_says_why_and_has_no_count():
    fields = counting.counted_fields(Result(setting(), "error", "CountError: no dump"))
    assert fields == {"instructions_per_call": None, "instructions_error": "error: CountError: no dump"}
