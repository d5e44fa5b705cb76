"""The regression gate: verdict labels, the baseline store (atomic, merging, never clobbering) and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import CPU_FINGERPRINT, GPU_FINGERPRINT, result, run_json, setting
from vitcnn import baseline as bl
from vitcnn import fingerprint
from vitcnn.runfile import RunFileError, load_run, parse_run

MIB = 1024 * 1024
S1 = setting()
S2 = setting(resolution=128)
S3 = setting(model="convnext_atto")
S4 = setting(batch=2)


def make_run(*results, fp=None, path="<memory>"):
    return parse_run(run_json(list(results), fp), path)


def write_run(path: Path, *results, fp=None) -> Path:
    path.write_text(json.dumps(run_json(list(results), fp)))
    return path


def low_noise(median: float, n: int = 30, seed: int = 0) -> list[float]:
    """n timings around `median` with 0.5% noise."""
    rng = np.random.default_rng(seed)
    return [float(x) for x in median * (1 + rng.normal(0, 0.005, n))]


def verdict(base_result, new_result, options=bl.GateOptions()) -> bl.SettingVerdict:
    [v] = bl.compare(make_run(base_result), make_run(new_result), options).verdicts
    return v


# ------------------------------------------------------------------------------------------------------------ speed


def test_clear_slowdown_is_slower():
    v = verdict(result(S1, low_noise(0.010, seed=1)), result(S1, low_noise(0.012, seed=2)))
    assert v.labels == ("slower",)
    assert v.regression
    assert v.ratio == pytest.approx(1.2, rel=0.01)
    assert v.p_value < 1e-6
    assert v.base_median_s == pytest.approx(0.010, rel=0.01) and v.new_median_s == pytest.approx(0.012, rel=0.01)


def test_clear_speedup_is_faster():
    v = verdict(result(S1, low_noise(0.012, seed=1)), result(S1, low_noise(0.010, seed=2)))
    assert v.labels == ("faster",)
    assert not v.regression
    assert v.p_value < 1e-6


def test_noisy_small_samples_beyond_tolerance_are_inconclusive():
    rng = np.random.default_rng(7)
    base, new = (list(rng.lognormal(np.log(0.01), 0.5, 6)) for _ in range(2))  # same wide distribution
    ratio = np.median(new) / np.median(base)
    assert ratio > 1.05 or ratio < 1 / 1.05  # precondition: the medians differ by more than the tolerance
    v = verdict(result(S1, base), result(S1, new))
    assert v.labels == ("inconclusive",)
    assert not v.regression
    assert v.p_value >= 0.01


def test_fewer_than_three_samples_cannot_be_significant():
    v = verdict(result(S1, [0.010, 0.010]), result(S1, [0.020, 0.020]))
    assert v.labels == ("inconclusive",)
    assert v.p_value is None
    assert "fewer than 3 samples" in v.detail


def test_within_tolerance_is_same_even_if_significant():
    v = verdict(result(S1, low_noise(0.010, seed=1)), result(S1, low_noise(0.0103, seed=2)))
    assert v.labels == ("same",)
    assert not v.regression


def test_identical_samples_are_same():
    samples = low_noise(0.01, n=10)
    v = verdict(result(S1, samples), result(S1, samples))
    assert v.labels == ("same",)
    assert v.ratio == 1.0


def test_tolerance_option_is_respected():
    base, new = result(S1, low_noise(0.010, seed=1)), result(S1, low_noise(0.012, seed=2))
    assert verdict(base, new, bl.GateOptions(tolerance=0.25)).labels == ("same",)


# ----------------------------------------------------------------------------------------------------------- memory


@pytest.mark.parametrize("base_mib,new_mib,label", [
    (100, 110, "memory-up"),
    (100, 90, "memory-down"),
    (100, 100.5, None),  # within 1% / 1 MiB
    (10, 10.9, None),  # 9% but under the 1 MiB absolute floor
    (10, 11.5, "memory-up"),
    (1000, 1009, None),  # 9 MiB but under 1%
    (1000, 1011, "memory-up"),
])
def test_memory_labels(base_mib, new_mib, label):
    samples = low_noise(0.01)
    v = verdict(result(S1, samples, activation_peak_bytes=int(base_mib * MIB)),
                result(S1, samples, activation_peak_bytes=int(new_mib * MIB)))
    assert v.labels == (("same",) if label is None else ("same", label))
    assert v.regression == (label == "memory-up")
    assert v.base_memory_bytes == int(base_mib * MIB) and v.new_memory_bytes == int(new_mib * MIB)


def test_memory_and_speed_labels_combine():
    v = verdict(result(S1, low_noise(0.010, seed=1), activation_peak_bytes=100 * MIB),
                result(S1, low_noise(0.012, seed=2), activation_peak_bytes=200 * MIB))
    assert v.labels == ("slower", "memory-up")


def test_no_memory_label_without_activation_peak():
    """On CPU activation_peak_bytes is None: nothing to compare."""
    v = verdict(result(S1, activation_peak_bytes=None), result(S1, activation_peak_bytes=500 * MIB))
    assert v.labels == ("same",)


def test_memory_tolerance_options():
    options = bl.GateOptions(memory_rel_tolerance=0.2, memory_abs_tolerance=0)
    v = verdict(result(S1, activation_peak_bytes=100 * MIB), result(S1, activation_peak_bytes=110 * MIB), options)
    assert v.labels == ("same",)


# ----------------------------------------------------------------------------------------------------------- status


@pytest.mark.parametrize("base_status,new_status,label,regression", [
    ("ok", "oom", "now-oom", True),
    ("ok", "error", "now-error", True),
    ("error", "oom", "now-oom", True),
    ("oom", "error", "now-error", True),
    ("skipped", "oom", "now-oom", True),
    ("oom", "ok", "fixed", False),
    ("error", "ok", "fixed", False),
    ("oom", "oom", "same", False),
    ("error", "error", "same", False),
    ("skipped", "skipped", "same", False),
    ("ok", "skipped", "missing", True),
    ("skipped", "ok", "new", False),
])
def test_status_labels(base_status, new_status, label, regression):
    v = verdict(result(S1, status=base_status, reason="why"), result(S1, status=new_status, reason="because"))
    assert v.labels == (label,)
    assert v.regression == regression
    assert (v.base_status, v.new_status) == (base_status, new_status)


def test_now_oom_detail_carries_reason():
    v = verdict(result(S1), result(S1, status="oom", reason="CUDA out of memory"))
    assert "CUDA out of memory" in v.detail
    assert v.base_median_s == pytest.approx(0.01)  # the baseline's timing is still shown


def test_missing_is_a_regression_unless_allowed():
    base, new = make_run(result(S1), result(S2)), make_run(result(S1))
    comparison = bl.compare(base, new)
    assert [v.labels for v in comparison.verdicts] == [("same",), ("missing",)]
    assert [v.id for v in comparison.regressions] == [S2.id]
    allowed = bl.compare(base, new, bl.GateOptions(allow_missing=True))
    assert allowed.verdicts[1].labels == ("missing",)
    assert not allowed.has_regression


def test_new_setting_is_not_a_regression():
    comparison = bl.compare(make_run(result(S1)), make_run(result(S1), result(S2), result(S3, status="error")))
    assert [v.labels for v in comparison.verdicts] == [("same",), ("new",), ("new",)]
    assert not comparison.has_regression
    assert comparison.verdicts[1].new_median_s == pytest.approx(0.01)


def test_comparison_counts_and_summary():
    base = make_run(result(S1, low_noise(0.01, seed=1)), result(S2), result(S3), result(S4, status="oom"))
    new = make_run(result(S1, low_noise(0.02, seed=2)), result(S2), result(S4), result(setting(batch=4)))
    comparison = bl.compare(base, new)
    assert comparison.counts == {"slower": 1, "same": 1, "fixed": 1, "missing": 1, "new": 1}
    assert comparison.has_regression and len(comparison.regressions) == 2
    assert comparison.summary() == "5 settings: 2 regressions (1 slower, 1 missing); 1 same, 1 fixed, 1 new"


# ------------------------------------------------------------------------------------------------------ fingerprint


def test_different_fingerprints_are_refused():
    other = {**GPU_FINGERPRINT, "gpu_name": "NVIDIA A100-SXM4-80GB", "driver": "550.54"}
    with pytest.raises(bl.FingerprintMismatch) as info:
        bl.compare(make_run(result(S1), fp=GPU_FINGERPRINT), make_run(result(S1), fp=other))
    assert info.value.differences == {
        "driver": ("580.159.03", "550.54"), "gpu_name": ("NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB")}
    message = str(info.value)
    for text in ("driver", "580.159.03", "550.54", "gpu_name", "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"):
        assert text in message


def test_cpu_vs_gpu_refused():
    with pytest.raises(bl.FingerprintMismatch, match="device"):
        bl.compare(make_run(result(S1)), make_run(result(S1), fp=GPU_FINGERPRINT))


def test_non_identity_differences_are_compared():
    new = make_run(result(S1), fp={**CPU_FINGERPRINT, "torch_threads": 1, "python": "3.12.0"})
    assert not bl.compare(make_run(result(S1)), new).cross_machine


def test_cross_machine_when_allowed_is_marked_everywhere():
    other = {**CPU_FINGERPRINT, "cpu_model": "Other CPU"}
    base = make_run(result(S1, low_noise(0.01, seed=1)), result(S2))
    new = make_run(result(S1, low_noise(0.02, seed=2)), result(S2), fp=other)
    comparison = bl.compare(base, new, bl.GateOptions(allow_cross_machine=True))
    assert comparison.cross_machine
    assert comparison.differences == {"cpu_model": ("Test CPU", "Other CPU")}
    assert all(v.cross_machine for v in comparison.verdicts)
    assert comparison.has_regression  # the labels are still computed
    assert "CROSS-MACHINE" in bl.format_table(comparison) and "Other CPU" in bl.format_table(comparison)
    assert "Cross-machine" in bl.to_markdown(comparison)


# ----------------------------------------------------------------------------------------------------------- output


def test_format_table_lists_every_setting():
    base = make_run(result(S1, low_noise(0.01, seed=1), activation_peak_bytes=100 * MIB), result(S2))
    new = make_run(result(S1, low_noise(0.02, seed=2), activation_peak_bytes=120 * MIB),
                   result(S2, status="oom", reason="OOM"))
    text = bl.format_table(bl.compare(base, new))
    lines = text.splitlines()
    assert lines[0].startswith("2 settings: 2 regressions")
    assert lines[1].split()[:7] == ["setting", "verdict", "base", "ms", "new", "ms", "ratio"]
    row = next(line for line in lines if line.startswith(S1.id))
    assert "slower,memory-up !" in row and "100.0→120.0" in row
    row = next(line for line in lines if line.startswith(S2.id))
    assert "now-oom !" in row and "oom" in row
    # fixed width: the verdict column starts at the same offset on every row
    offsets = {line.index(v) for line, v in zip(lines[3:], ["slower", "now-oom"])}
    assert len(offsets) == 1


def test_markdown_has_summary_then_table():
    comparison = bl.compare(make_run(result(S1), result(S2)), make_run(result(S1), result(S2, status="error",
                                                                                             reason="a | b")))
    md = bl.to_markdown(comparison)
    lines = md.splitlines()
    assert lines[0] == "2 settings: 1 regression (1 now-error); 1 same"
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + 2  # header, rule, one row per setting
    assert all(line.count(" | ") == table[0].count(" | ") for line in table[2:])  # the '|' in the reason is escaped
    assert "**now-error**" in md and f"`{S2.id}`" in md


# ------------------------------------------------------------------------------------------------------- properties


samples_st = st.lists(st.floats(1e-4, 1.0, allow_nan=False), min_size=1, max_size=30)
memory_st = st.none() | st.integers(0, 10**11)


@settings(max_examples=60, deadline=None)
@given(samples=samples_st, status=st.sampled_from(["ok", "oom", "error", "skipped"]), memory=memory_st)
def test_comparing_a_run_with_itself_never_regresses(samples, status, memory):
    run = make_run(result(S1, samples, status=status, activation_peak_bytes=memory), result(S2, samples))
    comparison = bl.compare(run, run)
    assert not comparison.has_regression
    assert all(v.labels == ("same",) for v in comparison.verdicts)


MIRROR = {"slower": "faster", "faster": "slower", "same": "same", "inconclusive": "inconclusive"}


@settings(max_examples=80, deadline=None)
@given(a=st.lists(st.floats(1e-3, 1e-2), min_size=1, max_size=25),
       b=st.lists(st.floats(1e-3, 1e-2), min_size=1, max_size=25),
       scale=st.sampled_from([0.5, 0.9, 1.0, 1.04, 1.06, 1.5, 3.0]))
def test_a_vs_b_mirrors_b_vs_a(a, b, scale):
    b = [x * scale for x in b]
    forward = verdict(result(S1, a), result(S1, b))
    backward = verdict(result(S1, b), result(S1, a))
    assert backward.labels == (MIRROR[forward.labels[0]],)
    if forward.labels[0] in ("slower", "faster"):
        assert backward.p_value == pytest.approx(forward.p_value)


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
    new_fp = {**CPU_FINGERPRINT, "torch_threads": 1}  # same identity, different machine_info
    new = make_run(result(S1, [0.03] * 5), result(S4, status="error", reason="boom"),
                   result(setting(batch=4), [0.04] * 5), fp=new_fp)
    path = bl.save_baseline(new, tmp_path)
    merged = load_run(path)
    assert list(merged.results) == [S1.id, S2.id, S3.id, S4.id, setting(batch=4).id]  # order kept, new appended
    assert merged.results[S1.id].samples == [0.03] * 5  # replaced
    assert merged.results[S2.id].samples == [0.02] * 5  # kept
    assert merged.results[S3.id].status == "oom"  # kept status-only entry
    assert merged.results[S4.id].status == "error" and merged.results[S4.id].samples == []  # no stale samples
    assert merged.fingerprint["torch_threads"] == 1  # machine_info from the new run
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


def _fail_replace(*args, **kwargs):
    raise OSError("disk on fire")


def _half_dump(obj, f, **kwargs):
    f.write(json.dumps(obj)[:50])
    raise OSError("no space left on device")


@pytest.mark.parametrize("target,replacement", [
    (os, ("replace", _fail_replace)),
    (json, ("dump", _half_dump)),
    (os, ("fsync", _fail_replace)),
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
    monkeypatch.setattr(os, "replace", _fail_replace)
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


# ------------------------------------------------------------------------------------------------------------- gate


def test_gate_without_baseline_says_how_to_create_one(tmp_path):
    with pytest.raises(bl.NoBaselineError) as info:
        bl.gate_against_baseline(make_run(result(S1)), tmp_path)
    assert isinstance(info.value, bl.BaselineError)
    assert "--vitcnn-save-baseline" in str(info.value) and "python -m vitcnn baseline save" in str(info.value)


def test_gate_compares_with_the_stored_baseline(tmp_path):
    bl.save_baseline(make_run(result(S1, low_noise(0.01, seed=1))), tmp_path)
    passing = bl.gate_against_baseline(make_run(result(S1, low_noise(0.01, seed=2))), tmp_path)
    assert not passing.has_regression
    failing = bl.gate_against_baseline(make_run(result(S1, low_noise(0.02, seed=2))), tmp_path)
    assert [v.labels for v in failing.regressions] == [("slower",)]


def test_gate_with_corrupt_baseline(tmp_path):
    run = make_run(result(S1))
    bl.baseline_path(run.slug, tmp_path).write_text("garbage")
    with pytest.raises(bl.CorruptBaselineError):
        bl.gate_against_baseline(run, tmp_path)


# -------------------------------------------------------------------------------------------------------------- CLI


def cli(argv: list[str]) -> int:
    """`python -m vitcnn ...` in-process."""
    from vitcnn.__main__ import main

    return main(argv)


@pytest.fixture
def runs(tmp_path):
    """Paths of a baseline run and of a passing, a slower and a foreign-fingerprint new run."""
    base = write_run(tmp_path / "base.json", result(S1, low_noise(0.01, seed=1)), result(S2))
    same = write_run(tmp_path / "same.json", result(S1, low_noise(0.01, seed=2)), result(S2))
    slower = write_run(tmp_path / "slower.json", result(S1, low_noise(0.02, seed=2)), result(S2))
    foreign = write_run(tmp_path / "foreign.json", result(S1), result(S2), fp=GPU_FINGERPRINT)
    return {"base": str(base), "same": str(same), "slower": str(slower), "foreign": str(foreign)}


def test_cli_compare_pass(runs, capsys):
    assert cli(["compare", runs["base"], runs["same"]]) == 0
    assert "2 settings: 0 regressions" in capsys.readouterr().out


def test_cli_compare_regression(runs, capsys, tmp_path):
    md = tmp_path / "gate.md"
    assert cli(["compare", runs["base"], runs["slower"], "--markdown", str(md)]) == 1
    assert "slower !" in capsys.readouterr().out
    assert "**slower**" in md.read_text()


def test_cli_compare_options(runs):
    assert cli(["compare", runs["base"], runs["slower"], "--tolerance", "1.5"]) == 0
    assert cli(["compare", runs["base"], runs["slower"], "--alpha", "1e-30"]) == 0  # inconclusive


def test_cli_compare_missing_allowed(tmp_path, runs):
    partial = write_run(tmp_path / "partial.json", result(S1, low_noise(0.01, seed=3)))
    assert cli(["compare", runs["base"], str(partial)]) == 1
    assert cli(["compare", runs["base"], str(partial), "--allow-missing"]) == 0


def test_cli_compare_fingerprint_mismatch(runs, capsys):
    assert cli(["compare", runs["base"], runs["foreign"]]) == 2
    err = capsys.readouterr().err
    assert "device: base='cpu' new='cuda'" in err and "gpu_name" in err
    assert cli(["compare", runs["base"], runs["foreign"], "--allow-cross-machine"]) == 0
    assert "CROSS-MACHINE" in capsys.readouterr().out


@pytest.mark.parametrize("problem", ["missing", "corrupt", "bad-option", "bad-alpha", "unknown-flag"])
def test_cli_compare_usage_errors(runs, tmp_path, capsys, problem):
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{")
    argv = {
        "missing": ["compare", runs["base"], str(tmp_path / "nope.json")],
        "corrupt": ["compare", str(corrupt), runs["same"]],
        "bad-option": ["compare", runs["base"], runs["same"], "--tolerance", "abc"],
        "bad-alpha": ["compare", runs["base"], runs["same"], "--alpha", "2"],
        "unknown-flag": ["compare", runs["base"], runs["same"], "--frobnicate"],
    }[problem]
    assert cli(argv) == 2
    assert capsys.readouterr().err


def test_cli_baseline_save_and_show(runs, tmp_path, capsys):
    directory = tmp_path / "store"
    assert cli(["baseline", "save", runs["base"], "--dir", str(directory)]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.parent == directory and load_run(path).results.keys() == {S1.id, S2.id}
    assert cli(["baseline", "show", "--dir", str(directory)]) == 0
    assert "2 settings (2 ok)" in capsys.readouterr().out


def test_cli_baseline_save_errors(runs, tmp_path, capsys):
    assert cli(["baseline", "save", str(tmp_path / "nope.json"), "--dir", str(tmp_path)]) == 2
    slug = load_run(runs["base"]).slug
    corrupt = bl.baseline_path(slug, tmp_path / "store")
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"\x00garbage")
    assert cli(["baseline", "save", runs["base"], "--dir", str(tmp_path / "store")]) == 2
    assert "untouched" in capsys.readouterr().err
    assert corrupt.read_bytes() == b"\x00garbage"
    assert cli(["baseline", "show", "--dir", str(tmp_path / "store")]) == 2
    assert cli(["baseline"]) == 2  # no action given


# ------------------------------------------------------------------- run-to-run spread learnt from repeated saves

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


def test_run_to_run_spread():
    assert bl.run_to_run_spread([]) == bl.run_to_run_spread([0.01]) == 0
    assert bl.run_to_run_spread([0.010, 0.013, 0.011]) == pytest.approx(0.3)


def test_gate_allows_the_spread_seen_between_saved_runs(tmp_path):
    for median in (0.010, 0.013):  # an A/A pair that moved 30% on this machine
        path = bl.save_baseline(make_run(result(S1, low_noise(median))), tmp_path)
    base = bl.load_baseline(path)
    within_noise = make_run(result(S1, low_noise(0.013 * 1.2)))
    beyond_noise = make_run(result(S1, low_noise(0.013 * 1.5)))
    verdict = bl.compare(base, within_noise).verdicts[0]
    assert verdict.labels == ("same",) and "run-to-run spread" in verdict.detail
    assert bl.compare(base, beyond_noise).verdicts[0].labels == ("slower",)
    single = bl.load_baseline(bl.save_baseline(make_run(result(S1, low_noise(0.013))), tmp_path / "single"))
    assert bl.compare(single, within_noise).verdicts[0].labels == ("slower",)  # no history: plain tolerance
