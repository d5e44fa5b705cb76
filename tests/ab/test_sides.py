"""What a side of `vitcnn ab` is (vitcnn/ab/sides.py): env and option parsing, git checkouts, starting a worker."""

from __future__ import annotations

import subprocess

import pytest

from vitcnn.ab.sides import (
    PROJECT_ROOT,
    Checkout,
    Side,
    SideError,
    WorkerProcess,
    parse_env,
    parse_side_opts,
)


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


def test_a_ref_is_a_temporary_worktree_removed_afterwards():
    checkout = Checkout("HEAD")
    root = checkout.root
    try:
        assert (root / "vitcnn" / "ab" / "worker.py").is_file() and root != PROJECT_ROOT
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
