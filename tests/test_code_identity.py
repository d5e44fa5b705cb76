"""The code a session measured with: a digest that follows the measured files and nothing else."""

from __future__ import annotations

import subprocess
from pathlib import Path

from vitcnn import code_identity


def make_tree(root: Path) -> None:
    for name, text in {"vitcnn/measure/timing.py": "T = 1\n", "vitcnn/settings.py": "S = 1\n",
                       "vitcnn/report/markdown.py": "M = 1\n", "benchmarks/test_inference.py": "B = 1\n",
                       "README.md": "hello\n"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_digest_changes_with_a_measured_file_only(tmp_path):
    make_tree(tmp_path)
    before = code_identity.measured_digest(tmp_path)
    (tmp_path / "vitcnn/report/markdown.py").write_text("M = 2\n")  # the report does not measure
    (tmp_path / "README.md").write_text("changed\n")
    assert code_identity.measured_digest(tmp_path) == before
    (tmp_path / "vitcnn/measure/timing.py").write_text("T = 2\n")
    assert code_identity.measured_digest(tmp_path) != before


def test_digest_sees_a_renamed_file(tmp_path):
    make_tree(tmp_path)
    before = code_identity.measured_digest(tmp_path)
    (tmp_path / "vitcnn/measure/timing.py").rename(tmp_path / "vitcnn/measure/clock.py")
    assert code_identity.measured_digest(tmp_path) != before


def test_collect_in_git_reads_commit_and_dirty_and_outside_git_says_none(tmp_path):
    outside = code_identity.collect(tmp_path)
    assert outside["commit"] is None and outside["dirty"] is None and outside["measured_files"] == 0
    make_tree(tmp_path)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    clean = code_identity.collect(tmp_path)
    assert clean["commit"] == head and clean["dirty"] is False and clean["measured_files"] == 3
    (tmp_path / "vitcnn/settings.py").write_text("S = 2\n")
    dirty = code_identity.collect(tmp_path)
    assert dirty["dirty"] is True and dirty["measured_sha256"] != clean["measured_sha256"]


def test_the_repository_itself_has_measured_files():
    root = Path(__file__).resolve().parents[1]
    names = {p.relative_to(root).as_posix() for p in code_identity.measured_files(root)}
    assert {"vitcnn/measure/pipeline.py", "vitcnn/plugin.py", "benchmarks/test_inference.py"} <= names
    assert not any(n.startswith(("vitcnn/report/", "vitcnn/gate/", "vitcnn/history/")) for n in names)
