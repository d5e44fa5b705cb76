"""What a side of `vitcnn ab` is (vitcnn/ab/sides.py): env and option parsing; and the checkout and worker process
it starts from (vitcnn/workers/checkout.py, process.py)."""

from __future__ import annotations

import subprocess

import pytest

from vitcnn.ab.sides import Side, SideError, parse_env, parse_side_opts
from vitcnn.workers.checkout import PROJECT_ROOT, Checkout
from vitcnn.workers.process import WorkerProcess


def test_env_pairs():
    assert parse_env(["A=1", "B_C=x=y", "EMPTY="], "A") == {"A": "1", "B_C": "x=y", "EMPTY": ""}
    for bad in ("NOVALUE", "=1", "BAD-NAME=1"):
        with pytest.raises(SideError, match="NAME=VALUE"):
            parse_env([bad], "B")


def test_side_options_use_the_plugins_names_and_refuse_session_options():
    namespace = parse_side_opts(["--vitcnn-sdpa=math", "--vitcnn-target-seconds", "2", "-p", "tests.x"], "B")
    assert namespace.vitcnn_sdpa == "math" and namespace.vitcnn_target_seconds == 2.0
    assert namespace.plugins == ["tests.x"]
    with pytest.raises(SideError, match="not a measurement option"):
        parse_side_opts(["--vitcnn-gate"], "A")
    with pytest.raises(SideError, match="unknown option"):
        parse_side_opts(["--frobnicate"], "A")


def test_axis_overrides_replace_one_field_per_option():
    assert Side("B", opts=("--vitcnn-sdpa=math", "--vitcnn-batch=4")).axis_overrides() == {"sdpa": "math",
                                                                                          "batch": 4}
    with pytest.raises(SideError, match="one value"):
        Side("B", opts=("--vitcnn-sdpa=math,flash",)).axis_overrides()


def test_every_axis_option_replaces_its_field_the_task_too():
    assert Side("B", opts=("--vitcnn-task=train", "--vitcnn-compile=eager", "--vitcnn-res=128")).axis_overrides() \
        == {"task": "train", "compile_mode": "eager", "resolution": 128}


def test_a_ref_from_before_the_workers_package_runs_its_own_worker_module():
    checkout = Checkout("c9e4b7d")  # the last commit whose worker was vitcnn/ab/worker.py
    try:
        assert checkout.worker_module == "vitcnn.ab.worker"
    finally:
        checkout.close()


def test_a_ref_is_a_temporary_worktree_removed_afterwards():
    checkout = Checkout("HEAD")
    root = checkout.root
    try:
        assert (root / "vitcnn" / "workers" / "worker.py").is_file() and root != PROJECT_ROOT
        assert checkout.worker_module == "vitcnn.workers.worker"
        listed = subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "list"], capture_output=True, text=True)
        assert str(root) in listed.stdout
    finally:
        checkout.close()
    assert not root.exists()
    listed = subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "list"], capture_output=True, text=True)
    assert str(root) not in listed.stdout


def test_a_ref_that_does_not_exist_is_a_side_error():
    with pytest.raises(SideError, match="cannot check out"):
        Checkout("no-such-ref-anywhere")


def test_an_interpreter_that_does_not_exist_is_a_side_error(tmp_path):
    with pytest.raises(SideError, match="cannot start"):
        WorkerProcess(Side("A", python=str(tmp_path / "python9")), Checkout(None), [], tmp_path / "a.log")
