"""A worker (vitcnn/workers/worker.py): a real worker process, driven through its protocol."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest

from tests.factories import setting
from vitcnn.ab.sides import Side
from vitcnn.workers import SideError, worker
from vitcnn.workers.checkout import Checkout
from vitcnn.workers.process import WorkerProcess

FAST = ("--vitcnn-warmup-seconds", "0.1")


@pytest.fixture
def process(tmp_path):
    proc = WorkerProcess(Side("A", opts=FAST), Checkout(None), ["--vitcnn-device", "cpu", "--vitcnn-threads", "1"],
                         tmp_path / "a.log")
    yield proc
    proc.close()


def test_setup_block_finish_free_on_a_tiny_eager_setting(process):
    hello = process.request("hello")
    assert hello["machine_info"]["vitcnn_fingerprint"]["device"] == "cpu"
    assert hello["torch_threads"] == 1
    assert hello["env"]["OMP_WAIT_POLICY"] is None  # the wait policy a plain run has (libgomp: spin, then sleep)
    s = setting("vit_t16", 64)
    assert "calibrate" in hello["commands"] and "block" in hello["commands"]
    with pytest.raises(SideError, match="calibrate before a successful setup"):
        process.request("calibrate", seconds=0.01)
    ready = process.request("setup", setting=s.as_dict())
    assert ready["status"] == "ok" and ready["per_call_s"] > 0
    calibrated = process.request("calibrate", seconds=0.01)
    assert calibrated["status"] == "ok" and calibrated["per_call_s"] > 0
    first = process.request("block", calls=4)
    second = process.request("block", calls=3)
    assert len(first["samples"]) == 4 and len(second["samples"]) == 3 and min(first["samples"]) > 0
    done = process.request("finish")  # the calibration's calls are kept nowhere
    assert done["status"] == "ok" and done["samples"] == first["samples"] + second["samples"]
    info = done["info"]
    assert info["setting_id"] == s.id and info["flops"] > 0 and info["sdpa_backend_used"] != "none"
    assert info["median_s"] > 0 and info["check_max_rel_err"] is not None  # the same fields measure() gives
    assert process.request("free") == {"ok": True}
    # the worker serves the next setting after freeing the last one; told not to count FLOPs (an A/B's process
    # after its side's first), it still checks the output
    again = process.request("setup", setting=setting("convnext_atto", 64).as_dict(), count_flops=False)
    assert again["status"] == "ok" and again["info"]["flops"] is None and again["info"]["check_max_rel_err"] is not None
    process.request("block", calls=3)
    done = process.request("finish")
    assert done["status"] == "ok" and done["info"]["tflops_per_s"] is None and done["info"]["median_s"] > 0


@pytest.mark.slow
def test_profile_after_the_blocks_gives_ops_a_trace_and_the_setups_compile_facts(process, tmp_path):
    from dataclasses import replace

    process.request("hello")
    with pytest.raises(SideError, match="profile before a successful setup"):
        process.request("profile")
    compiled = replace(setting("vit_t16", 64), compile_mode="default")
    assert process.request("setup", setting=compiled.as_dict())["status"] == "ok"
    process.request("block", calls=2)
    reply = process.request("profile", calls=2, trace=str(tmp_path / "trace.json"))
    assert reply["status"] == "ok" and reply["profile"]["calls"] == 2 and reply["profile"]["ops"]
    assert reply["compiled"]["graphs"] >= 1 and reply["compiled"]["graph_breaks"] == 0
    assert reply["compile_phases"]["_compile.compile_inner"] > 0  # this setup's compile, by torch.compile's phases
    assert json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    process.request("free")
    assert process.request("setup", setting=setting("vit_t16", 64).as_dict())["status"] == "ok"
    eager = process.request("profile", calls=1)
    assert eager["compile_phases"] == {} and eager["profile"]["ops"]["aten::addmm"]["count"] > 0


def test_a_failing_setting_is_a_status_and_the_worker_goes_on(process):
    bad = setting("vit_t16", 64, compile_mode="no-such-mode")
    reply = process.request("setup", setting=bad.as_dict())
    assert reply["status"] == "error" and reply["reason"]
    with pytest.raises(SideError, match="block before a successful setup"):
        process.request("block", calls=3)
    assert process.request("hello")["ok"]


def test_a_worker_that_exits_is_a_side_error_with_its_log(tmp_path):
    proc = WorkerProcess(Side("B", opts=("--vitcnn-frobnicate",)), Checkout(None), [], tmp_path / "b.log")
    try:
        with pytest.raises(SideError, match="exited") as info:
            proc.request("hello")
        assert "unrecognized arguments: --vitcnn-frobnicate" in str(info.value)  # the log's tail is in the error
        assert str(tmp_path / "b.log") in str(info.value)
    finally:
        proc.close()


def test_a_worker_that_dies_between_blocks_is_a_side_error(tmp_path):
    proc = WorkerProcess(Side("A"), Checkout(None), ["--vitcnn-warmup-seconds", "0.1"], tmp_path / "a.log")
    try:
        assert proc.request("setup", setting=setting("vit_t16", 64, compile_mode="eager").as_dict())["status"] == "ok"
        assert proc.request("block", calls=3)["status"] == "ok"
        proc.process.kill()
        proc.process.wait()
        with pytest.raises(SideError, match=r"the worker exited \(code -9\) during 'block'"):
            proc.request("block", calls=3)
    finally:
        proc.close()


def test_serve_answers_bad_requests_without_dying():
    fake = SimpleNamespace(**{name: (lambda request, _n=name: {"ok": True, "cmd": _n})
                              for name in ("hello", "setup", "calibrate", "block", "count", "profile", "finish",
                                           "free")})
    replies = io.StringIO()
    worker.serve(fake, io.StringIO('not json\n{"cmd": "dance"}\n\n{"cmd": "hello"}\n{"cmd": "quit"}\n'
                                   '{"cmd": "hello"}\n'), replies)
    answers = [json.loads(line) for line in replies.getvalue().splitlines()]
    assert [a["ok"] for a in answers] == [False, False, True]  # nothing after quit
    assert "bad request" in answers[0]["error"] and "unknown command" in answers[1]["error"]



def test_every_block_starts_with_a_lead_in_longer_than_libgomps_spin():
    from vitcnn.workers.worker import LEAD_IN_SECONDS, lead_in_calls

    assert lead_in_calls(1.0) == 1 and lead_in_calls(0.001) == 20 and lead_in_calls(0.0) == 1
    assert lead_in_calls(0.003) * 0.003 >= LEAD_IN_SECONDS


@pytest.mark.parametrize("argv, on", [([], False), (["--vitcnn-profile", "smoke"], False),
                                      (["--vitcnn-compile-times", "on", "--vitcnn-eager-twin", "on"], True)])
def test_compile_times_and_the_eager_twin_are_off_in_ab_unless_a_side_asks(argv, on):
    # Off even for the smoke profile, whose pytest runs have them on: every process of both sides would compile
    # each setting cold.
    options = worker.Worker(["--vitcnn-device", "cpu", *argv]).options
    assert (options.compile_times, options.eager_twin) == (on, on)


def test_free_freezes_what_outlives_a_setting_and_the_next_pause_keeps_it_frozen():
    import gc

    from vitcnn.measure.timing import gc_paused

    try:
        assert worker.Worker(["--vitcnn-device", "cpu"]).free({}) == {"ok": True}
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with gc_paused():  # a setup's or a block's pause
            pass
        assert gc.get_freeze_count() >= frozen and gc.isenabled()
    finally:
        gc.unfreeze()
