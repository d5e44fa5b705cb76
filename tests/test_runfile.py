"""Reading run files: clear errors for anything that is not a vitcnn run; slugs come from the fingerprint.
Writing stored files: atomic, and without `replace` never over an existing file."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from tests.factories import (
    CPU_FINGERPRINT,
    LEGACY_CPU_FINGERPRINT,
    RESULTS_CPU_RUN,
    amx_machine,
    non_amx_machine,
    result,
    run_json,
    setting,
)
from vitcnn import fingerprint
from vitcnn.runfile import RunFileError, cpu_features, device_label, load_run, parse_run, write_atomic


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
    assert device_label(CPU_FINGERPRINT) == "CPU measurement: Test CPU, 2 cores, AVX-512, no AMX"
    assert device_label(LEGACY_CPU_FINGERPRINT) == "CPU measurement: Test CPU, 2 cores"
    assert device_label({"device": "cuda", "gpu_name": "NVIDIA H200"}) == "NVIDIA H200"
    assert device_label({"device": "cuda", "gpu_name": "NVIDIA H200", "gpu_mig": "MIG 1g.18gb"}) == \
        "NVIDIA H200 (MIG 1g.18gb)"


def test_device_label_says_which_machine_amx_or_not():
    assert device_label(amx_machine()).endswith(", 2 cores, with AMX")
    assert device_label(non_amx_machine()).endswith(", 2 cores, AVX-512, no AMX")


def test_committed_run_of_the_first_format_is_labelled_from_its_cpu_record():
    run = load_run(RESULTS_CPU_RUN)
    assert run.device_label == "CPU measurement: Intel(R) Xeon(R) Processor, 2 cores, with AMX"
    features, source = cpu_features(run.fingerprint, run.machine_cpu)
    assert source == "py-cpuinfo" and "amx_bf16" in features


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


# --------------------------------------------------------------------------------------------------- write_atomic


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_write_atomic_writes_json_or_bytes_readable_like_any_file(tmp_path):
    write_atomic(tmp_path / "run.json", {"b": [1, 2], "a": None})
    assert (tmp_path / "run.json").read_text() == json.dumps({"b": [1, 2], "a": None}, indent=2) + "\n"
    write_atomic(tmp_path / "cache.bin", b"\x00\xff", replace=False)
    assert (tmp_path / "cache.bin").read_bytes() == b"\x00\xff"
    assert _names(tmp_path) == ["cache.bin", "run.json"]  # no temp file left
    umask = os.umask(0)
    os.umask(umask)
    assert all(p.stat().st_mode & 0o777 == 0o666 & ~umask for p in tmp_path.iterdir())  # not mkstemp's 0600


def test_write_atomic_replaces_in_one_step(tmp_path, monkeypatch):
    """Up to the rename `path` is the whole old file and the temp file the whole new one; after it, the new one."""
    path = tmp_path / "run.json"
    path.write_bytes(b"old")
    seen, real_replace = [], os.replace

    def look_then_replace(src, dst):
        seen.append((Path(src).read_bytes(), Path(dst).read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", look_then_replace)
    write_atomic(path, b"new")
    assert seen == [(b"new", b"old")]
    assert path.read_bytes() == b"new" and _names(tmp_path) == ["run.json"]


def test_write_atomic_without_replace_keeps_a_file_that_appeared_meanwhile(tmp_path, monkeypatch):
    """Not a check-then-write: the file is created by someone else after the temp file is written."""
    path = tmp_path / "out.json"
    real_fsync = os.fsync

    def someone_else_writes_path(fd):
        real_fsync(fd)
        if not path.exists():
            path.write_bytes(b"someone else's")

    monkeypatch.setattr(os, "fsync", someone_else_writes_path)
    with pytest.raises(FileExistsError):
        write_atomic(path, {"a": 1}, replace=False)
    assert path.read_bytes() == b"someone else's" and _names(tmp_path) == ["out.json"]
    monkeypatch.undo()
    with pytest.raises(FileExistsError):
        write_atomic(path, b"again", replace=False)
    assert path.read_bytes() == b"someone else's" and _names(tmp_path) == ["out.json"]


_real_fdopen = os.fdopen


def _half_write_then_disk_full(fd, mode):
    f = _real_fdopen(fd, mode)
    write = f.write

    def half(data):
        write(data[:len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    f.write = half
    return f


def _fail(*args, **kwargs):
    raise OSError("disk on fire")


@pytest.mark.parametrize("replace", [True, False])
@pytest.mark.parametrize("step", ["write", "fsync", "put in place"])
def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch, replace, step):
    old = tmp_path / "old.json"
    old.write_bytes(b"old")
    target = old if replace else tmp_path / "new.json"  # without replace, only a new path can be written
    patch = {"write": ("fdopen", _half_write_then_disk_full), "fsync": ("fsync", _fail),
             "put in place": ("replace" if replace else "link", _fail)}[step]
    monkeypatch.setattr(os, *patch)
    with pytest.raises(OSError):
        write_atomic(target, {"new": list(range(100))}, replace=replace)
    monkeypatch.undo()
    assert old.read_bytes() == b"old" and _names(tmp_path) == ["old.json"]


def test_an_output_a_user_named_gets_its_missing_folders(tmp_path):
    from vitcnn.runfile import write_output

    write_output(tmp_path / "a" / "b" / "verdicts.md", "| x |\n")
    write_output(tmp_path / "c" / "blocks.json", {"schema": 1})
    assert (tmp_path / "a" / "b" / "verdicts.md").read_text() == "| x |\n"
    assert json.loads((tmp_path / "c" / "blocks.json").read_text()) == {"schema": 1}
