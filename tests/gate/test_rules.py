"""The gate's verdict rules: speed, memory and status labels, fingerprints, the run-to-run spread, and the
verdict tables (vitcnn/gate/rules.py, vitcnn/gate/verdicts.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from tests.factories import (
    CPU_FINGERPRINT,
    GPU_FINGERPRINT,
    LEGACY_CPU_FINGERPRINT,
    S1,
    S2,
    S3,
    S4,
    amx_machine,
    low_noise,
    make_run,
    non_amx_machine,
    result,
    setting,
    stored,
)
from vitcnn.gate import baseline as bl
from vitcnn.gate import paired, rules, speed
from vitcnn.gate.stored import MIN_RUNS
from vitcnn.gate.verdicts import (
    format_paired_table,
    format_table,
    paired_markdown,
    to_markdown,
)
from vitcnn.table import MIB


def verdict(base_result, new_result, options=rules.GateOptions()) -> rules.SettingVerdict:
    """The verdict against a baseline of `base_result` saved twice (its samples decide: vitcnn/gate/stored.py)."""
    [v] = rules.compare(stored(make_run(base_result)), make_run(new_result), options).verdicts
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
    assert v.p_value is None or v.p_value >= 0.01  # intervals too wide to trust the samples: beyond 2x only


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
    assert verdict(base, new, rules.GateOptions(tolerance=0.25)).labels == ("same",)


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


def _untimed(s) -> dict:
    """A setting recorded "ok" whose timing is gone (its benchmark entry missing from the run file)."""
    return {**result(s), "benchmark": None}


@pytest.mark.parametrize("side", ["new", "base"])
def test_a_side_without_timing_is_inconclusive_and_says_so(side: str, tmp_path):
    """Both sides say "ok" but one has no timing: nothing to compare, so no speed claim either way (neither a
    regression nor a reassuring `same`), and the detail says why; in the CPU stored gate too, with history."""
    timed = result(S1, low_noise(0.01))
    base, new = (timed, _untimed(S1)) if side == "new" else (_untimed(S1), timed)
    v = verdict(base, new)
    assert v.labels == ("inconclusive",) and not v.regression
    assert v.detail == "no timing to compare" and v.ratio is None and v.p_value is None
    for seed in (1, 2, 3):
        bl.save_baseline(make_run(base if side == "base" else result(S1, low_noise(0.01, seed=seed))), tmp_path)
    [gated] = rules.gate_against_baseline(make_run(new), tmp_path).verdicts
    assert gated.labels == ("inconclusive",) and not gated.regression and "no timing to compare" in gated.detail


def test_no_memory_label_without_activation_peak():
    """On CPU activation_peak_bytes is None: nothing to compare."""
    v = verdict(result(S1, activation_peak_bytes=None), result(S1, activation_peak_bytes=500 * MIB))
    assert v.labels == ("same",)


def test_memory_tolerance_options():
    options = rules.GateOptions(memory_rel_tolerance=0.2, memory_abs_tolerance=0)
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
    base, new = stored(make_run(result(S1), result(S2))), make_run(result(S1))
    comparison = rules.compare(base, new)
    assert [v.labels for v in comparison.verdicts] == [("same",), ("missing",)]
    assert [v.id for v in comparison.regressions] == [S2.id]
    allowed = rules.compare(base, new, rules.GateOptions(allow_missing=True))
    assert allowed.verdicts[1].labels == ("missing",)
    assert not allowed.has_regression


def test_new_setting_is_not_a_regression():
    comparison = rules.compare(stored(make_run(result(S1))),
                               make_run(result(S1), result(S2), result(S3, status="error")))
    assert [v.labels for v in comparison.verdicts] == [("same",), ("new",), ("new",)]
    assert not comparison.has_regression
    assert comparison.verdicts[1].new_median_s == pytest.approx(0.01)


def test_comparison_counts_and_summary():
    base = make_run(result(S1, low_noise(0.01, seed=1)), result(S2), result(S3), result(S4, status="oom"))
    new = make_run(result(S1, low_noise(0.02, seed=2)), result(S2), result(S4), result(setting(batch=4)))
    comparison = rules.compare(stored(base), new)
    assert comparison.counts == {"slower": 1, "same": 1, "fixed": 1, "missing": 1, "new": 1}
    assert comparison.has_regression and len(comparison.regressions) == 2
    assert comparison.summary() == ("5 settings: 2 regressions (1 slower, 1 missing); 1 same, 1 fixed, 1 new; "
                                    "worst detectable slowdown 5.0%")


# ------------------------------------------------------------------------------------------------------ fingerprint


def test_different_fingerprints_are_refused():
    other = {**GPU_FINGERPRINT, "gpu_name": "NVIDIA A100-SXM4-80GB", "driver": "550.54"}
    with pytest.raises(bl.FingerprintMismatch) as info:
        rules.compare(make_run(result(S1), fp=GPU_FINGERPRINT), make_run(result(S1), fp=other))
    assert info.value.differences == {
        "driver": ("580.159.03", "550.54"), "gpu_name": ("NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB")}
    message = str(info.value)
    for text in ("driver", "580.159.03", "550.54", "gpu_name", "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"):
        assert text in message


def test_cpu_vs_gpu_refused():
    with pytest.raises(bl.FingerprintMismatch, match="device"):
        rules.compare(make_run(result(S1)), make_run(result(S1), fp=GPU_FINGERPRINT))


def test_non_identity_differences_are_compared():
    new = make_run(result(S1), fp={**CPU_FINGERPRINT, "python": "3.12.0"})
    assert not rules.compare(make_run(result(S1)), new).cross_machine


def test_cross_machine_when_allowed_is_marked_everywhere():
    other = {**CPU_FINGERPRINT, "cpu_model": "Other CPU"}
    base = make_run(result(S1, low_noise(0.01, seed=1)), result(S2))
    new = make_run(result(S1, low_noise(0.02, seed=2)), result(S2), fp=other)
    comparison = rules.compare(stored(base), new, rules.GateOptions(allow_cross_machine=True))
    assert comparison.cross_machine
    assert comparison.differences == {"cpu_model": ("Test CPU", "Other CPU")}
    assert all(v.cross_machine for v in comparison.verdicts)
    assert comparison.has_regression  # the labels are still computed
    assert "CROSS-MACHINE" in format_table(comparison) and "Other CPU" in format_table(comparison)
    assert "Cross-machine" in to_markdown(comparison)


# ------------------------------------------------------------------------------------------- machine identity


def test_amx_and_non_amx_runs_are_refused():
    # issue 18: vit_b16-1024px-bs1-bf16 took 1.58 s on the AMX machine and 9.12 s on the non-AMX one
    base = make_run(result(S1, low_noise(1.58)), fp=amx_machine())
    new = make_run(result(S1, low_noise(9.12)), fp=non_amx_machine())
    with pytest.raises(bl.FingerprintMismatch, match="cpu_features") as info:
        rules.compare(base, new)
    assert set(info.value.differences) == {"cpu_features", "cpu_model_number"}


def _gpu_base_and_new(**new_fields):
    base = stored(make_run(result(S1, low_noise(0.010, seed=1)), fp=GPU_FINGERPRINT))
    new = make_run(result(S1, low_noise(0.013, seed=2)), fp={**GPU_FINGERPRINT, **new_fields})
    return base, new


def test_gpu_condition_change_is_a_warning_not_a_refusal():
    comparison = rules.compare(*_gpu_base_and_new(gpu_power_limit_w=400))
    assert comparison.condition_changes == {"gpu_power_limit_w": (700, 400)}
    assert [v.labels for v in comparison.verdicts] == [("slower",)]  # still gated
    assert not comparison.cross_machine
    text = format_table(comparison)
    assert "WARNING: GPU conditions differ" in text and "gpu_power_limit_w base=700 new=400" in text
    assert "GPU conditions differ" in to_markdown(comparison)


def test_a_malloc_policy_change_is_a_warning_on_any_device():
    base = stored(make_run(result(S1, low_noise(0.010, seed=1)), fp={**GPU_FINGERPRINT, "malloc": "glibc default"}))
    new = make_run(result(S1, low_noise(0.010, seed=2)), fp={**GPU_FINGERPRINT, "malloc": "glibc, fixed"})
    comparison = rules.compare(base, new)
    assert comparison.condition_changes == {"malloc": ("glibc default", "glibc, fixed")}
    text = format_table(comparison)
    assert "WARNING: run conditions differ (malloc base='glibc default' new='glibc, fixed')" in text


def test_gpu_identity_change_is_refused():
    with pytest.raises(bl.FingerprintMismatch, match="gpu_mig"):
        rules.compare(*_gpu_base_and_new(gpu_mig="NVIDIA H100 80GB HBM3 MIG 3g.40gb"))


@pytest.mark.parametrize("incomplete_side", ["base", "new"])
def test_incomplete_identity_gates_no_speed(incomplete_side):
    fps = {"base": CPU_FINGERPRINT, "new": CPU_FINGERPRINT, incomplete_side: LEGACY_CPU_FINGERPRINT}
    base = make_run(result(S1, low_noise(0.01, seed=1)), result(S2, low_noise(0.01), activation_peak_bytes=MIB),
                    fp=fps["base"])
    new = make_run(result(S1, low_noise(0.05, seed=2)), result(S2, low_noise(0.01), activation_peak_bytes=50 * MIB),
                   fp=fps["new"])
    comparison = rules.compare(base, new)
    assert set(comparison.incomplete) == {incomplete_side} and "cpu_features" in comparison.incomplete[incomplete_side]
    s1, s2 = comparison.verdicts
    assert s1.labels == ("inconclusive",) and not s1.regression and rules.INCOMPLETE in s1.detail  # 5x, not judged
    assert s2.labels == ("inconclusive", "memory-up") and s2.regression  # memory is still gated
    assert "IDENTITY INCOMPLETE" in format_table(comparison)


def test_incomplete_identity_with_cross_machine_allowed_judges_speed():
    base = make_run(result(S1, low_noise(0.01, seed=1)), fp=LEGACY_CPU_FINGERPRINT)
    new = make_run(result(S1, low_noise(0.05, seed=2)))
    comparison = rules.compare(base, new, rules.GateOptions(allow_cross_machine=True))
    [v] = comparison.verdicts
    assert v.labels == ("slower",) and v.regression and v.cross_machine
    assert "allowed" in format_table(comparison)


def test_gate_uses_an_older_baseline_of_this_machine_and_says_so(tmp_path):
    old = make_run(result(S1, low_noise(0.01, seed=1)), fp=LEGACY_CPU_FINGERPRINT)
    for _ in range(MIN_RUNS):
        bl.save_baseline(old, tmp_path)
    comparison = rules.gate_against_baseline(make_run(result(S1, low_noise(0.05, seed=3))), tmp_path)
    assert comparison.incomplete == {"base": rules.fingerprint.missing_identity(LEGACY_CPU_FINGERPRINT)}
    assert not comparison.has_regression and comparison.verdicts[0].labels == ("inconclusive",)


# ----------------------------------------------------------------------------------------------------------- output


def test_format_table_lists_every_setting():
    base = make_run(result(S1, low_noise(0.01, seed=1), activation_peak_bytes=100 * MIB), result(S2))
    new = make_run(result(S1, low_noise(0.02, seed=2), activation_peak_bytes=120 * MIB),
                   result(S2, status="oom", reason="OOM"))
    text = format_table(rules.compare(stored(base), new))
    lines = [line for line in text.splitlines() if not line.startswith("speed decided")]
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
    comparison = rules.compare(stored(make_run(result(S1), result(S2))),
                               make_run(result(S1), result(S2, status="error", reason="a | b")))
    md = to_markdown(comparison)
    lines = md.splitlines()
    assert lines[0] == "2 settings: 1 regression (1 now-error); 1 same; worst detectable slowdown 5.0%"
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
    comparison = rules.compare(run, run)
    assert not comparison.has_regression  # one run as the base: `inconclusive` (beyond 2x only), never a verdict
    assert all(v.labels in (("same",), ("inconclusive",)) for v in comparison.verdicts)
    if len(samples) >= 2:  # a saved run with an interval: saved twice, it agrees with itself and its samples decide
        assert all(v.labels == ("same",) for v in rules.compare(stored(run), run).verdicts)


MIRROR = {"slower": "faster", "faster": "slower", "same": "same", "inconclusive": "inconclusive"}


@settings(max_examples=80, deadline=None)
@given(a=st.lists(st.floats(1e-3, 1e-2), min_size=1, max_size=25),
       b=st.lists(st.floats(1e-3, 1e-2), min_size=1, max_size=25),
       scale=st.sampled_from([0.5, 0.9, 1.0, 1.04, 1.06, 1.5, 3.0]))
def test_a_vs_b_mirrors_b_vs_a(a, b, scale):
    """One run's samples against another's (speed.OneRun) mirror exactly; so does the 2x rule of a single run."""
    b = [x * scale for x in b]
    [forward, backward] = [rules.compare_result(make_run(result(S1, x)).results[S1.id],
                                                make_run(result(S1, y)).results[S1.id]) for x, y in ((a, b), (b, a))]
    single = [rules.compare(make_run(result(S1, x)), make_run(result(S1, y))).verdicts[0].labels[0]
              for x, y in ((a, b), (b, a))]
    assert single[1] == MIRROR[single[0]]
    assert backward.labels == (MIRROR[forward.labels[0]],)
    if forward.labels[0] in ("slower", "faster"):
        assert backward.p_value == pytest.approx(forward.p_value)


# ------------------------------------------------------------------------------------------------------------- gate


def test_gate_without_baseline_says_how_to_create_one(tmp_path):
    with pytest.raises(bl.NoBaselineError) as info:
        rules.gate_against_baseline(make_run(result(S1)), tmp_path)
    assert isinstance(info.value, bl.BaselineError)
    assert "--vitcnn-save-baseline" in str(info.value) and "python -m vitcnn baseline save" in str(info.value)


def test_gate_compares_with_the_stored_baseline(tmp_path):
    for seed in (1, 3, 4):  # three saves: on CPU, speed is judged against the spread between saved runs
        bl.save_baseline(make_run(result(S1, low_noise(0.01, seed=seed))), tmp_path)
    passing = rules.gate_against_baseline(make_run(result(S1, low_noise(0.01, seed=2))), tmp_path)
    assert not passing.has_regression
    failing = rules.gate_against_baseline(make_run(result(S1, low_noise(0.02, seed=2))), tmp_path)
    assert [v.labels for v in failing.regressions] == [("slower",)]


def test_gate_with_corrupt_baseline(tmp_path):
    run = make_run(result(S1))
    bl.baseline_path(run.slug, tmp_path).write_text("garbage")
    with pytest.raises(bl.CorruptBaselineError):
        rules.gate_against_baseline(run, tmp_path)


# ------------------------------------------------------------------- run-to-run spread learnt from repeated saves

def test_run_to_run_spread():
    assert speed.run_to_run_spread([]) == speed.run_to_run_spread([0.01]) == 0
    assert speed.run_to_run_spread([0.010, 0.013, 0.011]) == pytest.approx(0.3)


def test_saved_runs_that_disagree_beyond_their_samples_are_not_trusted_for_small_changes(tmp_path):
    """Two saves 30% apart (an A/A pair on a 2-core VM): their samples did not predict each other, so neither +20%
    nor +50% is read from samples; with one save nothing shows how far runs move: only beyond 2x is judged."""
    for median in (0.010, 0.013):
        path = bl.save_baseline(make_run(result(S1, low_noise(median))), tmp_path)
    base = bl.load_baseline(path)
    for factor in (1.2, 1.5):
        [v] = rules.compare(base, make_run(result(S1, low_noise(0.013 * factor)))).verdicts
        assert v.labels == ("inconclusive",) and "judged only beyond 2x" in v.detail and v.detectable == 1.0
    assert rules.compare(base, make_run(result(S1, low_noise(0.03)))).verdicts[0].labels == ("slower",)
    single = bl.load_baseline(bl.save_baseline(make_run(result(S1, low_noise(0.013))), tmp_path / "single"))
    assert rules.compare(single, make_run(result(S1, low_noise(0.0156)))).verdicts[0].labels == ("inconclusive",)


# ----------------------------------------------------- the stored-baseline gate on CPU: saved runs are the unit


def test_cpu_speed_from_saved_runs_holds_its_false_alarm_rate_where_one_run_s_samples_do_not():
    """Each run of a setting lands at its own speed (sd 5% here, as separate runs on the 2-core VM do) with tight
    samples inside. Gating a new run's samples against the last saved run's (Mann-Whitney, tolerance widened to
    the max/min spread of the saved medians) fails unchanged code in many trials; judging the new median against
    the saved runs' own spread (history_speed) stays within alpha."""
    rng = np.random.default_rng(25)
    options = rules.GateOptions()
    trials, per_run_alarms, history_alarms = 200, 0, 0
    for _ in range(trials):
        medians = 0.01 * np.exp(rng.normal(0, 0.05, 4))  # 3 saved runs and the new one
        runs = [low_noise(m, seed=int(rng.integers(1 << 30))) for m in medians]
        spread = speed.run_to_run_spread(list(medians[:3]))
        old = rules.compare_result(make_run(result(S1, runs[2])).results[S1.id],
                                   make_run(result(S1, runs[3])).results[S1.id], options, spread=spread)
        per_run_alarms += old.labels[0] in ("slower", "faster")
        new = speed.history_speed(list(medians[:3]), float(np.median(runs[3])), options, tests=1)
        history_alarms += new.label in ("slower", "faster")
    assert per_run_alarms / trials > 0.1, per_run_alarms
    assert stats.binomtest(history_alarms, trials, options.alpha, alternative="greater").pvalue >= 0.05


def test_cpu_speed_from_saved_runs_catches_a_change_far_beyond_their_spread():
    options = rules.GateOptions()
    three = [0.0100, 0.0103, 0.0098]  # 2.5% apart: with 2 degrees of freedom only a gross change can stand out
    assert speed.history_speed(three, 0.0600, options, tests=32).label == "slower"
    assert speed.history_speed(three, 0.0015, options, tests=32).label == "faster"
    coarse = speed.history_speed(three, 0.0200, options, tests=32)
    assert coarse.label == "same" and "against the mean of 3 saved runs" in coarse.detail and "t with 2 df" in coarse.detail
    ten = three * 3 + [0.0101]  # the same spread over 10 saves: a 25% slowdown now stands out
    assert speed.history_speed(ten, 0.0125, options, tests=32).label == "slower"
    assert speed.history_speed([0.01] * 3, 0.0104, options, tests=1).label == "same"  # within the tolerance




def test_a_baseline_saved_once_gates_failures_memory_and_far_changes_only_and_says_so(tmp_path):
    bl.save_baseline(make_run(result(S1, low_noise(0.01, seed=1), activation_peak_bytes=100 * MIB),
                              result(S2, low_noise(0.01, seed=1)), result(S3), result(S4)), tmp_path)
    run = make_run(result(S1, low_noise(0.019, seed=2), activation_peak_bytes=200 * MIB),
                   result(S2, low_noise(0.0055, seed=2)), result(S3, status="oom", reason="CUDA out of memory"),
                   result(S4, low_noise(0.025)))
    comparison = rules.gate_against_baseline(run, tmp_path)
    by_id = {v.id: v for v in comparison.verdicts}
    assert by_id[S1.id].labels == ("inconclusive", "memory-up") and by_id[S1.id].regression  # memory still gated
    assert "+90.0%" in by_id[S1.id].detail and "judged only beyond 2x until 3 are saved" in by_id[S1.id].detail
    assert by_id[S2.id].labels == ("inconclusive",)  # 1.8x faster: not beyond 2x
    assert by_id[S3.id].labels == ("now-oom",) and by_id[S3.id].regression  # failures still fail
    assert by_id[S4.id].labels == ("slower",) and "beyond 2x" in by_id[S4.id].detail  # 2.5x
    assert len(comparison.regressions) == 3
    [note] = [n for n in comparison.notes if n.startswith("speed decided")]
    assert "3 by only a change beyond 2x" in note and "baseline save" in note
    assert note in format_table(comparison) and note in to_markdown(comparison)
    assert not any(n.startswith("BASE IS ONE RUN") for n in comparison.notes)  # a baseline, saved once


def test_compare_of_two_run_files_says_what_it_can_decide():
    comparison = rules.compare(make_run(result(S1, low_noise(0.01))), make_run(result(S1, low_noise(0.019))))
    assert comparison.verdicts[0].labels == ("inconclusive",)
    assert comparison.notes[0].startswith("BASE IS ONE RUN") and "vitcnn ab" in comparison.notes[0]
    assert rules.compare(make_run(result(S1, low_noise(0.01))),
                         make_run(result(S1, low_noise(0.03)))).verdicts[0].labels == ("slower",)


# --------------------------------------------------------------------------------- interleaved A/B: compare_paired


def _paired(a_result, b_result, blocks, **options):
    [a] = make_run(a_result).results.values()
    [b] = make_run(b_result).results.values()
    opts = rules.GateOptions(tolerance=options.pop("tolerance", 0.03), alpha=options.pop("alpha", 0.05))
    return rules.compare_paired([rules.PairedInput(a, b, blocks)], opts, **options)


DRIFT = [0.010, 0.013, 0.009, 0.016, 0.011, 0.010, 0.014, 0.012]  # the machine moves 1.8x between rounds
PROCESS = [1.0, 1.004, 0.997]  # three processes per side, each a little off


def blocks(ratio: float = 1.0, noise: float = 0.0, seed: int = 0) -> list[paired.Block]:
    """Three processes per side over the DRIFT rounds; B is `ratio` times A."""
    rng = np.random.default_rng(seed)
    return [paired.Block(side, k, r, drift * offset * (ratio if side == "B" else 1.0) * math.exp(rng.normal(0, noise)))
            for r, drift in enumerate(DRIFT) for k, offset in enumerate(PROCESS) for side in "AB"]


def test_paired_slowdown_under_drift_is_slower_with_ci_adjusted_p_and_detectable_effect():
    comparison = _paired(result(S1), result(S1), blocks(1.10))
    [v] = comparison.verdicts
    assert v.labels == ("slower",) and v.regression and comparison.has_regression
    assert v.ratio == pytest.approx(1.10) and v.ci_low < 1.10 < v.ci_high and v.processes == 3
    assert v.p_value < 1e-4 and 0 < v.detectable < 0.05
    assert "+10.0%" in v.detail and "from 24 blocks of 3 processes per side" in v.detail
    assert "worst detectable slowdown" in comparison.summary()


def test_paired_a_a_under_drift_is_same():
    [v] = _paired(result(S1), result(S1), blocks(1.0, noise=0.005, seed=1)).verdicts
    assert v.labels == ("same",) and not v.regression and v.ci_low < 1 < v.ci_high and v.detectable < 0.05


def test_paired_too_coarse_to_see_the_goal_is_inconclusive_and_says_what_it_could_see():
    [v] = _paired(result(S1), result(S1), blocks(1.0, noise=0.08, seed=2)).verdicts
    assert v.labels == ("inconclusive",) and not v.regression and v.detectable > 0.05
    assert "could only have seen a slowdown of" in v.detail and "(needs 5%)" in v.detail


def test_paired_a_split_beyond_the_threshold_alone_is_inconclusive_and_says_why():
    """One of 24 settings: four processes per side split completely, 6.6% apart, its interval wholly beyond 3%
    but not significant once corrected across the 24 (as in a smoke A/A on the AMD EPYC VM): never `same`."""
    offsets = [math.exp(x) for x in (-0.0216, -0.0072, 0.0072, 0.0216)]

    def four(ratio: float) -> list[paired.Block]:
        return [paired.Block(side, k, r, 0.01 * offset * (ratio if side == "B" else 1.0))
                for r in range(12) for k, offset in enumerate(offsets) for side in "AB"]

    settings = [setting(batch=b, resolution=res) for b in (1, 2, 3) for res in (64, 96, 128, 160, 192, 224, 256, 288)]
    runs = [(make_run(result(s)).results.popitem()[1], four(1.066 if i == 0 else 1.0)) for i, s in enumerate(settings)]
    comparison = rules.compare_paired([rules.PairedInput(r, r, b) for r, b in runs],
                                      rules.GateOptions(tolerance=0.03, alpha=0.025))
    split, *null = comparison.verdicts
    assert split.labels == ("inconclusive",) and split.ci_low > 1.03 and split.detectable <= 0.05
    assert "beyond 3% in this setting alone, not after the correction across 24 settings" in split.detail
    assert all(v.labels == ("same",) for v in null)


def test_paired_status_and_memory_labels():
    [oom] = _paired(result(S1), result(S1, status="oom", reason="out of memory"), []).verdicts
    assert oom.labels == ("now-oom",) and oom.regression and oom.ratio is None
    [err] = _paired(result(S1), result(S1, status="error", reason="boom"), []).verdicts
    assert err.labels == ("now-error",) and err.regression
    [both] = _paired(result(S1, status="oom"), result(S1, status="oom"), []).verdicts
    assert both.labels == ("same",) and not both.regression
    [mem] = _paired(result(S1, activation_peak_bytes=100 * MIB), result(S1, activation_peak_bytes=102 * MIB),
                    blocks()).verdicts
    assert mem.labels == ("same", "memory-up") and mem.regression


def test_paired_sides_with_different_settings_keep_a_s_id_and_name_b_s():
    b_setting = setting(sdpa="math")
    [v] = _paired(result(S1), result(b_setting), blocks()).verdicts
    assert v.id == S1.id and f"B runs {b_setting.id}" in v.detail


def test_paired_tables_show_the_interval_and_the_detectable_slowdown():
    comparison = _paired(result(S1), result(S1), blocks(1.10), looks=2)
    lines = format_paired_table(comparison).splitlines()
    assert "CI: 95.0% interval of B/A (each end the one-sided test at alpha 0.05 spent over 2 looks)" in lines[1]
    header = next(line for line in lines if line.startswith("setting"))
    assert header.split()[:10] == ["setting", "verdict", "A", "ms", "B", "ms", "B/A", "CI", "p", "adj"]
    assert "detectable" in header
    row = next(line for line in lines if line.startswith(S1.id))
    assert row.split()[1:6] == ["slower", "!", "10.000", "10.000", "1.100"]
    md = paired_markdown(comparison)
    assert "| setting | verdict | A ms | B ms | B/A | CI | p adj | detectable | act. MiB | detail |" in md
    assert f"| `{S1.id}` | **slower** | 10.000 | 10.000 | 1.100 |" in md


# ------------------------------------------------------------------------- compile counts: exact on any machine


COMPILED = {"graphs": 1, "graph_breaks": 0, "graph_break_reasons": [], "recompiles": 0}
BROKEN = {"graphs": 2, "graph_breaks": 1, "recompiles": 0,
          "graph_break_reasons": ["Call to `torch._dynamo.graph_break()` explicitly_called"]}


@pytest.mark.parametrize("new, labels", [
    (COMPILED, ("same",)),
    (BROKEN, ("same", "graph-breaks-up")),
    ({**COMPILED, "recompiles": 7}, ("same", "recompiles-up")),
    ({**BROKEN, "recompiles": 7}, ("same", "graph-breaks-up", "recompiles-up")),
])
def test_graph_breaks_and_recompiles_that_go_up_are_regressions(new, labels):
    samples = low_noise(0.01)
    v = verdict(result(S1, samples, **COMPILED), result(S1, samples, **new))
    assert v.labels == labels and v.regression == (len(labels) > 1)
    if "graph-breaks-up" in labels:
        assert "graph breaks 0 -> 1 (first: Call to `torch._dynamo.graph_break()`" in v.detail
    if "recompiles-up" in labels:
        assert "recompiles 0 -> 7" in v.detail


def test_fewer_graph_breaks_and_counts_missing_on_a_side_decide_nothing():
    samples = low_noise(0.01)
    assert verdict(result(S1, samples, **BROKEN), result(S1, samples, **COMPILED)).labels == ("same",)
    older = result(S1, samples)  # a run from before the counts were recorded (and an eager setting: None)
    assert verdict(older, result(S1, samples, **BROKEN)).labels == ("same",)


def test_the_cpu_gate_fails_on_a_graph_break_without_any_speed_history(tmp_path):
    bl.save_baseline(make_run(result(S1, low_noise(0.01), **COMPILED)), tmp_path)
    [v] = rules.gate_against_baseline(make_run(result(S1, low_noise(0.01), **BROKEN)), tmp_path).verdicts
    assert v.labels[1:] == ("graph-breaks-up",) and v.regression  # whatever speed could say from one save


def test_paired_graph_breaks_are_a_regression_whatever_the_speed():
    [v] = _paired(result(S1, **COMPILED), result(S1, **BROKEN), blocks()).verdicts
    assert v.labels == ("same", "graph-breaks-up") and v.regression and "graph breaks 0 -> 1" in v.detail
