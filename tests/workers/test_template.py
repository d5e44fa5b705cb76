"""A worker template (vitcnn/workers/template.py): a real template process forking real workers."""

from __future__ import annotations

import os
import time

import pytest

from tests.factories import setting
from vitcnn.ab.sides import Side
from vitcnn.workers import SideError
from vitcnn.workers.checkout import Checkout
from vitcnn.workers.process import WorkerTemplate

ARGS = ["--vitcnn-device", "cpu", "--vitcnn-warmup-seconds", "0.1"]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    made = WorkerTemplate(Side("A"), Checkout(None), ARGS, tmp_path_factory.mktemp("template") / "template.log")
    yield made
    made.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_forks_are_fresh_processes_that_measure_with_the_templates_options(template, tmp_path):
    forks = [template.fork(tmp_path / f"w{k}.log") for k in range(2)]
    try:
        hellos = [w.request("hello") for w in forks]
        assert len({h["pid"] for h in hellos} | {template.process.pid}) == 3
        assert all(h["pid"] == w.pid for h, w in zip(hellos, forks))
        assert hellos[0]["machine_info"]["vitcnn_fingerprint"]["device"] == "cpu"
        assert "block" in hellos[0]["commands"]
        s = setting("vit_t16", 64, compile_mode="eager")
        for w in forks:
            w.send("setup", setting=s.as_dict(), count_flops=False)
        assert [w.receive("setup")["status"] for w in forks] == ["ok", "ok"]
        for w in forks:
            block = w.request("block", calls=3)
            assert block["status"] == "ok" and len(block["samples"]) == 3
            # the fork runs torch's intra-op threads of its own: no OpenMP pool was lost across the fork
            assert block["host"]["run_s"] > 0
        assert forks[0].request("finish")["status"] == "ok"
    finally:
        for w in forks:
            w.close()
    deadline = time.monotonic() + 30
    while any(_alive(w.pid) for w in forks) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w.pid) for w in forks)  # closed forks exit and are reaped
    assert _alive(template.process.pid)


def test_a_fork_that_dies_is_a_side_error_naming_its_log(template, tmp_path):
    fork = template.fork(tmp_path / "dies.log")
    try:
        assert fork.request("hello")["ok"]
        os.kill(fork.pid, 9)
        with pytest.raises(SideError, match="the worker exited") as info:
            fork.request("hello")
        assert str(tmp_path / "dies.log") in str(info.value)
    finally:
        fork.close()


def test_a_template_that_cannot_start_says_why(tmp_path):
    with pytest.raises(SideError, match="unrecognized arguments: --vitcnn-frobnicate"):
        WorkerTemplate(Side("B", opts=("--vitcnn-frobnicate",)), Checkout(None), [], tmp_path / "b.log")
