"""Baseline files: path per fingerprint, atomic saves that merge and never clobber, the saved-median history."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.factories import (
    CPU_FINGERPRINT,
    GPU_FINGERPRINT,
    LEGACY_CPU_FINGERPRINT,
    S1,
    S2,
    S3,
    S4,
    low_noise,
    make_run,
    result,
    setting,
    write_run,
)
from vitcnn import fingerprint
from vitcnn.gate import baseline as bl
from vitcnn.gate import rules
from vitcnn.runfile import RunFileError, load_run

# ------------------------------------------------------------------------------------------------------------ store


def test_baseline_path(tmp_path):
    assert bl.baseline_path("cpu-x-2c-torch2.1-abcd1234") == Path("baselines/cpu-x-2c-torch2.1-abcd1234.json")
    assert bl.baseline_path("s", tmp_path) == tmp_path / "s.json"
    with pytest.raises(bl.BaselineError):
        bl.baseline_path("../evil")


def test_save_creates_a_full_run_file(tmp_path):
    run = make_run(result(S1, low_noise(0.01)), result(S2, status="oom", reason="OOM"))
    path = bl.save_baseline(run, tmp_path / "baselines")
    assert path == tmp_path / "baselines" / f"{fingerprint.slug(CPU_FINGERPRINT)}.json"
    saved = load_run(path)
    assert saved.results[S1.id].samples == run.results[S1.id].samples  # raw samples kept
    assert saved.results[S2.id].status == "oom"
    saved_json = json.loads(path.read_text())
    assert saved_json.pop("vitcnn")["median_history"] == {S1.id: [pytest.approx(0.01, rel=0.01)]}
    expected = dict(run.raw)
    assert {k: v for k, v in saved_json.items()} == {k: v for k, v in expected.items() if k != "vitcnn"}
    assert list(path.parent.iterdir()) == [path]  # no temp file left
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any file, not mkstemp's 0600


def test_save_merges_and_keeps_uncovered_settings(tmp_path):
    old = make_run(result(S1, [0.01] * 5), result(S2, [0.02] * 5), result(S3, status="oom"), result(S4))
    bl.save_baseline(old, tmp_path)
    new_fp = {**CPU_FINGERPRINT, "python": "3.12.0"}  # same identity, different machine_info
    new = make_run(result(S1, [0.03] * 5), result(S4, status="error", reason="boom"),
                   result(setting(batch=4), [0.04] * 5), fp=new_fp)
    path = bl.save_baseline(new, tmp_path)
    merged = load_run(path)
    assert list(merged.results) == [S1.id, S2.id, S3.id, S4.id, setting(batch=4).id]  # order kept, new appended
    assert merged.results[S1.id].samples == [0.03] * 5  # replaced
    assert merged.results[S2.id].samples == [0.02] * 5  # kept
    assert merged.results[S3.id].status == "oom"  # kept status-only entry
    assert merged.results[S4.id].status == "error" and merged.results[S4.id].samples == []  # no stale samples
    assert merged.fingerprint["python"] == "3.12.0"  # machine_info from the new run
    raw = json.loads(path.read_text())
    assert len(raw["vitcnn"]["settings"]) == 5 and len(raw["benchmarks"]) == 3


@pytest.mark.parametrize("content", [b"{not json", b"", b'{"benchmarks": []}', b'[1, 2]',
                                     b'{"benchmarks": [], "machine_info": {}, "vitcnn": {"schema": 1}}'])
def test_corrupt_baseline_is_reported_and_left_untouched(tmp_path, content):
    run = make_run(result(S1))
    path = bl.baseline_path(run.slug, tmp_path)
    path.write_bytes(content)
    with pytest.raises(bl.CorruptBaselineError, match="untouched") as info:
        bl.save_baseline(run, tmp_path)
    assert isinstance(info.value, RunFileError)
    assert str(path) in str(info.value)
    assert path.read_bytes() == content
    assert list(tmp_path.iterdir()) == [path]


def _fail(*args, **kwargs):
    raise OSError("disk on fire")


@pytest.mark.parametrize("target,replacement", [
    (os, ("replace", _fail)),
    (json, ("dumps", _fail)),
    (os, ("fsync", _fail)),
])
def test_interrupted_save_leaves_the_old_baseline(tmp_path, monkeypatch, target, replacement):
    path = bl.save_baseline(make_run(result(S1, [0.01] * 5), result(S2)), tmp_path)
    before = path.read_bytes()
    monkeypatch.setattr(target, *replacement)
    with pytest.raises(OSError):
        bl.save_baseline(make_run(result(S1, [0.5] * 5)), tmp_path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_interrupted_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "replace", _fail)
    with pytest.raises(OSError):
        bl.save_baseline(make_run(result(S1)), tmp_path)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_merge_with_another_identity_is_refused(tmp_path):
    run = make_run(result(S1))
    path = bl.baseline_path(run.slug, tmp_path)
    write_run(path, result(S2), fp={**CPU_FINGERPRINT, "timm": "0.9.0"})  # as if the slug had collided
    before = path.read_bytes()
    with pytest.raises(bl.FingerprintMismatch, match="timm"):
        bl.save_baseline(run, tmp_path)
    assert path.read_bytes() == before
    bl.save_baseline(run, tmp_path, allow_cross_machine=True)
    assert set(load_run(path).results) == {S1.id, S2.id}


def test_repeated_saves_record_each_settings_median_history(tmp_path):
    for median in (0.010, 0.011, 0.012):
        path = bl.save_baseline(make_run(result(S1, low_noise(median)), result(S2, low_noise(median))), tmp_path)
    history = json.loads(path.read_text())["vitcnn"]["median_history"]
    assert [round(m, 4) for m in history[S1.id]] == [0.010, 0.011, 0.012]
    bl.save_baseline(make_run(result(S1, status="oom", reason="OOM")), tmp_path)  # S1 failed: starts over
    history = json.loads(path.read_text())["vitcnn"]["median_history"]
    assert S1.id not in history and len(history[S2.id]) == 3
    for _ in range(bl.HISTORY_LENGTH + 2):
        bl.save_baseline(make_run(result(S2, low_noise(0.01))), tmp_path)
    assert len(json.loads(path.read_text())["vitcnn"]["median_history"][S2.id]) == bl.HISTORY_LENGTH


# ------------------------------------------------------------------------------------- baselines of older vitcnn


def test_resave_reason_only_for_an_incomplete_identity():
    assert bl.resave_reason(make_run(result(S1))) is None
    reason = bl.resave_reason(make_run(result(S1), fp=LEGACY_CPU_FINGERPRINT))
    assert "identity incomplete" in reason and "cpu_features" in reason and "re-save" in reason


def test_require_baseline_falls_back_to_the_first_format_slug(tmp_path):
    legacy = make_run(result(S1), fp=LEGACY_CPU_FINGERPRINT)
    path = bl.save_baseline(legacy, tmp_path)
    assert path.name == f"{fingerprint.slug(LEGACY_CPU_FINGERPRINT)}.json"  # an old baseline keeps its name
    run = make_run(result(S1))
    found = bl.require_baseline(run.slug, tmp_path, fingerprint.legacy_slug(run.fingerprint))
    assert found.path == str(path) and not fingerprint.is_complete(found.fingerprint)
    with pytest.raises(bl.NoBaselineError):
        bl.require_baseline(run.slug, tmp_path)  # without the fallback asked for, none
    new_path = bl.save_baseline(run, tmp_path)  # a complete run saves under its own slug, beside the old one
    assert new_path != path and path.exists()
    assert bl.require_baseline(run.slug, tmp_path, fingerprint.legacy_slug(run.fingerprint)).path == str(new_path)


def test_the_gate_finds_a_gpu_baseline_saved_before_the_host_joined_and_gates_no_speed(tmp_path):
    before = {**GPU_FINGERPRINT, "identity_version": 2}
    path = bl.save_baseline(make_run(result(S1, low_noise(0.01)), fp=before), tmp_path)
    run = make_run(result(S1, low_noise(0.05)), fp=GPU_FINGERPRINT)
    assert bl.require_baseline(run.slug, tmp_path, fingerprint.older_slugs(run.fingerprint)).path == str(path)
    comparison = rules.gate_against_baseline(run, tmp_path)
    assert comparison.incomplete == {"base": fingerprint.HOST_IDENTITY}
    assert comparison.verdicts[0].labels == ("inconclusive",) and not comparison.has_regression
    assert "identity incomplete" in bl.resave_reason(bl.load_baseline(path))
