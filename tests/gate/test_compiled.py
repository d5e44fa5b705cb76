"""The torch.compile gate rules: speedup-down and compile-slower, their false-alarm rates on synthetic sessions
that include what the method does not assume (a per-run offset, spread that differs between runs), and their
path through the stored-baseline gate and the A/B comparison."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from tests.factories import make_run, result, setting
from vitcnn.gate import compiled, metrics, paired, rules
from vitcnn.settings import Setting

ALPHA = 0.01
SPEEDUP_TOL = rules.GateOptions().speedup_tolerance
COMPILE_TOL = rules.GateOptions().compile_tolerance
SETTINGS = [setting(model=m, resolution=r, batch=b, compile_mode="default")
            for m in ("vit_t16", "vitdet_t16", "convnext_atto", "nfnet_tiny") for r in (64, 128) for b in (1, 2)]


def twin_logs(speedup: float, noise: float, rng: np.random.Generator, pairs: int = 10) -> list[float]:
    """One run's pair log-ratios log(eager/compiled) around log(speedup)."""
    return [float(x) for x in math.log(speedup) + rng.normal(0, noise, pairs)]


def results_of(fields: dict[Setting, dict]) -> dict:
    """Parsed Results keyed by id, one per setting, with the given extra_info fields."""
    run = make_run(*(result(s, **f) for s, f in fields.items()))
    return run.results


def triples(base: dict, new: dict) -> list[tuple]:
    return [(i, base[i], new[i]) for i in base]


# ------------------------------------------------------------------------------------------------ speedup-down


def test_a_speedup_that_fell_beyond_the_tolerance_is_flagged_and_one_within_it_is_not():
    rng = np.random.default_rng(1)
    s = SETTINGS[0]
    base = results_of({s: {"speedup_log_ratios": twin_logs(1.40, 0.03, rng)}})
    fell = results_of({s: {"speedup_log_ratios": twin_logs(1.40 / 1.35, 0.03, rng)}})
    slight = results_of({s: {"speedup_log_ratios": twin_logs(1.40 / 1.10, 0.005, rng)}})
    [(i, finding)] = compiled.speedup_findings(triples(base, fell), ALPHA, SPEEDUP_TOL).items()
    assert i == s.id and finding.label == "speedup-down" and "x -> 1.0" in finding.detail
    # significant (tight pairs) but only 10% lower: within the 20% tolerance
    low_p = stats.ttest_ind(slight[s.id].get("speedup_log_ratios"), base[s.id].get("speedup_log_ratios"),
                            alternative="less").pvalue
    assert low_p < ALPHA and compiled.speedup_findings(triples(base, slight), ALPHA, SPEEDUP_TOL) == {}


def test_a_big_drop_without_significance_is_not_flagged():
    rng = np.random.default_rng(2)
    s = SETTINGS[0]
    base = results_of({s: {"speedup_log_ratios": twin_logs(1.4, 0.6, rng, pairs=3)}})
    new = results_of({s: {"speedup_log_ratios": twin_logs(1.1, 0.6, rng, pairs=3)}})
    assert compiled.speedup_findings(triples(base, new), ALPHA, SPEEDUP_TOL) == {}


def test_speedups_missing_or_too_short_on_a_side_decide_nothing():
    s = SETTINGS[0]
    base = results_of({s: {"speedup_log_ratios": [0.3] * 10}})
    for new_fields in ({}, {"speedup_log_ratios": None}, {"speedup_log_ratios": [0.0]}):
        assert compiled.speedup_findings(triples(base, results_of({s: new_fields})), ALPHA, SPEEDUP_TOL) == {}


def test_identical_constant_ratios_are_a_drop_exactly_when_they_fell():
    s = SETTINGS[0]
    base = results_of({s: {"speedup_log_ratios": [math.log(1.5)] * 10}})
    fell = results_of({s: {"speedup_log_ratios": [math.log(1.2)] * 10}})
    assert compiled.speedup_findings(triples(base, fell), ALPHA, SPEEDUP_TOL)[s.id].label == "speedup-down"
    assert compiled.speedup_findings(triples(base, base), ALPHA, SPEEDUP_TOL) == {}


def _speedup_sessions(offset_sd: float, sessions: int = 200, seed: int = 3) -> int:
    """A/A sessions of 16 settings: each run of a setting has its own offset (a process drawn slower for compiled
    than for eager, which the paired design does not cancel) and its own pair spread; how many sessions flag
    any setting."""
    rng = np.random.default_rng(seed)
    flagged = 0
    for _ in range(sessions):
        base, new = {}, {}
        for s in SETTINGS:
            true = rng.uniform(0.8, 2.0)
            base[s] = {"speedup_log_ratios": twin_logs(true * math.exp(rng.normal(0, offset_sd)),
                                                       rng.uniform(0.01, 0.08), rng)}
            new[s] = {"speedup_log_ratios": twin_logs(true * math.exp(rng.normal(0, offset_sd)),
                                                      rng.uniform(0.01, 0.08), rng)}
        flagged += bool(compiled.speedup_findings(triples(results_of(base), results_of(new)), ALPHA, SPEEDUP_TOL))
    return flagged


def test_speedup_down_false_alarms_stay_within_alpha_when_the_pairs_are_all_the_noise():
    flagged = _speedup_sessions(offset_sd=0.0)
    assert stats.binomtest(flagged, 200, ALPHA, alternative="greater").pvalue > 0.01, flagged


def test_per_run_offsets_like_the_vms_are_absorbed_by_the_tolerance():
    # Two smoke runs on the 2-core VM moved tight settings' speedups by up to 7% with Welch p down to 0.001: an
    # offset per run that the pairs' spread does not contain. The t-test alone flags such sessions; the 20%
    # threshold does not (at a 10% threshold this design flagged 45 of these 200 sessions).
    assert _speedup_sessions(offset_sd=0.03) == 0


# ---------------------------------------------------------------------------------------------- compile-slower


def cold_times(scale: float, noise: float, rng: np.random.Generator, settings=SETTINGS) -> dict:
    return {s: {"compile_cold_s": float(15.0 * scale * math.exp(rng.normal(0, noise)))} for s in settings}


def test_a_session_whose_cold_compiles_grew_flags_the_settings_beyond_the_tolerance():
    rng = np.random.default_rng(4)
    base = results_of(cold_times(1.0, 0.05, rng))
    new = results_of(cold_times(1.5, 0.05, rng))
    found, note = compiled.compile_findings(triples(base, new), ALPHA, COMPILE_TOL)
    assert set(found) == {s.id for s in SETTINGS} and all(f.label == "compile-slower" for f in found.values())
    assert "over 16 settings" in note and "p=" in note and found[SETTINGS[0].id].detail.startswith("cold compile +")


def test_cold_compiles_that_grew_less_than_the_tolerance_or_in_one_setting_only_pass():
    rng = np.random.default_rng(5)
    base = cold_times(1.0, 0.02, rng)
    slight = results_of(cold_times(1.1, 0.02, rng))  # significant, but 10% < 20%
    assert compiled.compile_findings(triples(results_of(base), slight), ALPHA, COMPILE_TOL)[0] == {}
    one = {**base, SETTINGS[0]: {"compile_cold_s": base[SETTINGS[0]]["compile_cold_s"] * 3}}
    # a limitation the module states: one setting is one draw per run, never labelled alone
    assert compiled.compile_findings(triples(results_of(base), results_of(one)), ALPHA, COMPILE_TOL)[0] == {}


def test_fewer_than_three_paired_cold_compiles_are_not_gated():
    rng = np.random.default_rng(6)
    two = SETTINGS[:2]
    base, new = results_of(cold_times(1.0, 0.0, rng, two)), results_of(cold_times(3.0, 0.0, rng, two))
    assert compiled.compile_findings(triples(base, new), ALPHA, COMPILE_TOL) == ({}, None)


def test_compile_slower_false_alarms_stay_within_alpha_on_a_session_shared_offset():
    # A/A: the whole new run compiles up to ~10% slower or faster (a busier machine), each setting with its own
    # noise; the 20% threshold and the t-test keep false alarms rare.
    rng = np.random.default_rng(7)
    flagged = 0
    for _ in range(200):
        base = cold_times(1.0, 0.08, rng)
        new = cold_times(math.exp(rng.normal(0, 0.05)), 0.08, rng)
        flagged += bool(compiled.compile_findings(triples(results_of(base), results_of(new)), ALPHA,
                                                  COMPILE_TOL)[0])
    assert flagged == 0


# ------------------------------------------------------------------------------------------- through the gates


def _run(fields: dict) -> object:
    return make_run(*(result(s, **f) for s, f in fields.items()))


def test_the_stored_gate_adds_the_compile_labels_as_regressions_and_notes_the_session():
    rng = np.random.default_rng(8)
    base = {s: {**cold_times(1.0, 0.03, rng)[s], "speedup_log_ratios": twin_logs(1.4, 0.02, rng)}
            for s in SETTINGS}
    new = {s: {**cold_times(1.6, 0.03, rng)[s], "speedup_log_ratios": twin_logs(1.4, 0.02, rng)} for s in SETTINGS}
    new[SETTINGS[0]]["speedup_log_ratios"] = twin_logs(1.0, 0.02, rng)
    comparison = rules.compare(_run(base), _run(new), rules.GateOptions(alpha=ALPHA))
    by_id = {v.id: v for v in comparison.verdicts}
    assert by_id[SETTINGS[0].id].labels[1:] == ("speedup-down", "compile-slower")
    assert all("compile-slower" in v.labels and v.regression for v in comparison.verdicts)
    assert comparison.counts["compile-slower"] == 16 and comparison.counts["speedup-down"] == 1
    assert any(note.startswith("cold compile time: +") and "over 16 settings" in note for note in comparison.notes)


def test_the_ab_comparison_adds_them_too():
    rng = np.random.default_rng(9)
    s = SETTINGS[:4]
    a = {x: {**cold_times(1.0, 0.02, rng, s)[x], "speedup_log_ratios": twin_logs(1.4, 0.02, rng)} for x in s}
    b = {x: {**cold_times(1.0, 0.02, rng, s)[x], "speedup_log_ratios": twin_logs(1.4, 0.02, rng)} for x in s}
    b[s[1]]["speedup_log_ratios"] = twin_logs(1.1, 0.02, rng)
    ra, rb = _run(a), _run(b)
    blocks = [paired.Block(side, p, r, 0.01) for side in "AB" for p in range(3) for r in range(4)]
    inputs = [rules.PairedInput(ra.results[x.id], rb.results[x.id], blocks) for x in s]
    comparison = rules.compare_paired(inputs, rules.GateOptions(tolerance=0.03, alpha=0.05))
    labels = {v.id: v.labels for v in comparison.verdicts}
    assert labels[s[1].id][-1] == "speedup-down" and all("speedup-down" not in labels[x.id] for x in (s[0], *s[2:]))
    assert any(note.startswith("cold compile time:") for note in comparison.notes)


def test_the_labels_are_known_to_the_tables_and_regressions():
    assert {"speedup-down", "compile-slower"} <= set(metrics.LABELS) & metrics.ALWAYS_REGRESSIONS
