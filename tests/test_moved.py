"""Old import paths (vitcnn/_moved.py): every module that moved into a stage package still imports, as the same
module object, with a DeprecationWarning that names the new path."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys

import pytest

from vitcnn import _moved


@pytest.mark.parametrize("old, new", sorted(_moved.MOVED.items()))
def test_old_path_is_the_new_module(old, new):
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        sys.modules.pop(old, None)
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


def test_user_imports_from_the_old_and_the_documented_paths_agree():
    with pytest.warns(DeprecationWarning):
        sys.modules.pop("vitcnn.window", None)
        from vitcnn.window import WindowAttention as old
    from vitcnn.zoo import WindowAttention
    assert old is WindowAttention


def test_every_moved_target_exists_and_no_old_file_is_left():
    for old, new in _moved.MOVED.items():
        assert importlib.util.find_spec(new) is not None, new
        assert importlib.util.find_spec(old).origin is None, f"{old} still exists as a file"


def test_a_fresh_interpreter_warns_once_and_names_the_new_path():
    done = subprocess.run([sys.executable, "-W", "always::DeprecationWarning", "-c",
                           "from vitcnn.flops import count_flops; import vitcnn.measure.flops as m; "
                           "assert count_flops is m.count_flops"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("vitcnn.flops moved to vitcnn.measure.flops") == 1
