"""vitcnn/site/publish.py and `python -m vitcnn publish`: the directory it writes, what it refuses, and that it
never deletes a file it did not write."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.factories import RESULTS_CPU_RUN
from tests.site.conftest import SMOKE_MACHINE
from vitcnn import cli
from vitcnn.history.store import HistoryStore
from vitcnn.site.publish import MARKER, PublishError, publish


def test_the_site_is_written_with_its_assets_and_a_marker_listing_its_files(planted_site):
    from plotly.offline import get_plotlyjs

    assert (planted_site / "assets" / "plotly.min.js").read_text() == get_plotlyjs()
    assert (planted_site / "assets" / "site.js").stat().st_size > 1000
    listed = json.loads((planted_site / MARKER).read_text())["files"]
    on_disk = sorted(p.relative_to(planted_site).as_posix() for p in planted_site.rglob("*") if p.is_file())
    assert sorted([*listed, MARKER]) == on_disk


def test_a_non_empty_directory_that_is_not_a_site_is_refused_and_left_alone(planted_store, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(PublishError, match=f"refusing to write into {out}"):
        publish(planted_store, out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(PublishError, match="refusing to write into .*: it is a file"):
        publish(planted_store, tmp_path / "file")


def test_an_empty_or_missing_directory_is_written(planted_store, tmp_path):
    (tmp_path / "empty").mkdir()
    assert publish(planted_store, tmp_path / "empty").is_file()
    assert publish(planted_store, tmp_path / "new" / "deeper").is_file()


def test_republishing_updates_the_site_removes_its_stale_pages_and_keeps_other_files(planted_site, tmp_path):
    out = tmp_path / "site"
    shutil.copytree(planted_site, out)
    (out / "README-local.txt").write_text("a file the user put here")
    (out / "settings" / SMOKE_MACHINE / "my-notes.txt").write_text("kept")
    marker = json.loads((out / MARKER).read_text())
    marker["files"].append("../outside.txt")  # a marker naming a file outside the site is not obeyed
    (out / MARKER).write_text(json.dumps(marker))
    (tmp_path / "outside.txt").write_text("outside")

    smaller = HistoryStore(tmp_path / "store", create=True)
    smaller.add([RESULTS_CPU_RUN])  # only the other machine: every page of the smoke machine is stale
    publish(smaller, out)

    assert not list((out / "settings" / SMOKE_MACHINE).glob("*.html"))
    assert (out / "settings" / SMOKE_MACHINE / "my-notes.txt").read_text() == "kept"
    assert (out / "README-local.txt").is_file() and (tmp_path / "outside.txt").is_file()
    assert SMOKE_MACHINE not in (out / "index.html").read_text()
    assert "my-notes.txt" not in json.loads((out / MARKER).read_text())["files"]


def test_publishing_twice_writes_the_same_site(planted_store, planted_site, tmp_path):
    out = publish(planted_store, tmp_path / "again").parent
    for page in planted_site.rglob("*.html"):
        assert (out / page.relative_to(planted_site)).read_text() == page.read_text(), page


def test_an_empty_store_publishes_a_site_that_says_so(tmp_path):
    index = publish(HistoryStore(tmp_path / "store", create=True), tmp_path / "site")
    assert "No runs in this store yet" in index.read_text()
    assert "No regression found" in (tmp_path / "site" / "regressions.html").read_text()


def test_the_command_line_publishes_and_refuses(planted_store, tmp_path, capsys):
    out = tmp_path / "site"
    assert cli.main(["publish", str(planted_store.root), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    assert cli.main(["publish", str(planted_store.root), "--out", str(out)]) == 0  # over its own site
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("x")
    assert cli.main(["publish", str(planted_store.root), "--out", str(tmp_path / "other")]) == 2
    assert "refusing to write into" in capsys.readouterr().err
