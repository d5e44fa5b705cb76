"""Confirming change points (vitcnn/history/confirm.py): by the instruction series of the same machine and setting
(a step the same way beyond its tolerance, flat, the other way, not counted there, absent), deterministic series by
themselves, by an A/B's verdict, and `history check --confirm ab`'s wiring: which change points it asks about, in
what order, with which sessions, and what it says on another machine. The A/B is a probe function given here: a
real session takes minutes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.history.planted import fake_commit, planted_runs
from vitcnn.ab.probe import Probe
from vitcnn.cli import main as cli
from vitcnn.history import check, confirm
from vitcnn.history.changepoints import changes
from vitcnn.history.confirm import CONFIRMED, DRIFT, UNCONFIRMED, Confirmation
from vitcnn.history.series import METRICS, Point, Series
from vitcnn.history.store import HistoryStore

TOLERANCE = METRICS["instructions"].tolerance
SMOKE_MACHINE = "cpu-intel-r-xeon-r-processor-amx-2c-torch2.14.1-d276b17b"  # the machine of results/cpu-smoke


def series_of(values: list[float], metric: str = "latency", machine: str = "m", setting: str = "s",
              commits: list[str] | None = None) -> Series:
    """A series whose commit i is named c<i> (or `commits[i]`)."""
    names = commits or [f"c{i:02d}" for i in range(len(values))]
    points = [Point(c, f"2026-01-01T00:{i:02d}:00+00:00", v) for i, (c, v) in enumerate(zip(names, values))]
    return Series(machine, setting, METRICS[metric], points)


def step(before: float, after: float, n: int = 6, metric: str = "latency", **where) -> Series:
    return series_of([before] * n + [after] * n, metric, **where)


def the_change(series: Series):
    [change] = changes(series)
    return change


# ------------------------------------------------------------------------------------------- instruction counts


@pytest.mark.parametrize("count_ratio, state, label", [
    (1.15, CONFIRMED, "confirmed by instructions +15.00%"),
    (1 + TOLERANCE * 2, CONFIRMED, f"confirmed by instructions +{TOLERANCE * 2:.2%}"),
    (1 + TOLERANCE / 2, DRIFT, f"machine drift, not confirmed (instructions flat, +{TOLERANCE / 2:.2%})"),
    (1.0, DRIFT, "machine drift, not confirmed (instructions flat, +0.00%)"),
    (0.9, UNCONFIRMED, "not confirmed (instructions -10.00%, the other way)"),
])
def test_a_latency_step_is_judged_by_the_counts_between_its_two_commits(count_ratio, state, label):
    change = the_change(step(10.0, 12.0))
    counts = step(1e9, 1e9 * count_ratio, metric="instructions")
    found = confirm.by_counts(change, counts)
    assert (found.state, found.label) == (state, label)
    assert found.confirmed is (state == CONFIRMED)


def test_an_improvement_is_confirmed_by_counts_that_fell():
    change = the_change(step(10.0, 8.0))
    assert confirm.by_counts(change, step(1e9, 0.8e9, metric="instructions")).label == \
        "confirmed by instructions -20.00%"
    assert confirm.by_counts(change, step(1e9, 1.2e9, metric="instructions")).state == UNCONFIRMED


def test_only_the_two_commits_around_the_step_count():
    """Counts that stepped elsewhere (two commits earlier) are flat between the latency step's commits: the
    instruction series' own change point is listed (and, a regression, fails by itself), the latency's is not
    confirmed by it."""
    change = the_change(step(10.0, 12.0))
    earlier = series_of([1e9] * 4 + [1.2e9] * 8, "instructions")
    assert confirm.by_counts(change, earlier).state == DRIFT


def test_counts_missing_at_either_commit_or_absent_confirm_nothing_and_say_so():
    change = the_change(step(10.0, 12.0))
    gaps = series_of([1e9] * 12, "instructions", commits=[f"c{i:02d}" for i in range(12)])
    gaps = replace(gaps, points=[p for p in gaps.points if p.commit != "c06"])
    assert confirm.by_counts(change, gaps).label == "not confirmed (instructions not counted at c06)"
    assert confirm.by_counts(change, None).label == "not confirmed (no instructions series)"
    assert confirm.by_counts(change, None, offer_ab=True).label == \
        "not confirmed (no instructions series; use --confirm ab)"


def test_the_store_finds_the_counts_of_the_same_machine_and_setting_only():
    latency = step(10.0, 12.0, machine="m", setting="s")
    same = step(1e9, 1.2e9, metric="instructions", machine="m", setting="s")
    other_machine = step(1e9, 1.2e9, metric="instructions", machine="other", setting="s")
    other_setting = step(1e9, 1.2e9, metric="instructions", machine="m", setting="t")
    change = the_change(latency)
    assert confirm.from_store(change, confirm.index([latency, same])).confirmed
    assert confirm.from_store(change, confirm.index([latency, other_machine, other_setting])).label == \
        "not confirmed (no instructions series)"


@pytest.mark.parametrize("metric", ["activation_memory", "instructions"])
def test_a_deterministic_series_confirms_itself(metric):
    found = confirm.from_store(the_change(step(1e6, 2e6, metric=metric)), {})
    assert found.confirmed and found.label == "confirmed by itself (deterministic)"


@pytest.mark.parametrize("metric", ["compile_time", "compile_time_warm"])
def test_nothing_confirms_a_compile_time_and_no_ab_is_offered(metric):
    """Instructions do not see compile time, and an A/B of one setting never labels `compile-slower` (it needs
    several settings' compiles): a compile time's change point cannot be confirmed."""
    change = the_change(step(10.0, 20.0, metric=metric))
    counts = step(1e9, 2e9, metric="instructions")
    found = confirm.from_store(change, confirm.index([change.series, counts]), offer_ab=True)
    assert found.label == "not confirmed (no instrument confirms this timed metric)"


# ----------------------------------------------------------------------------------------------------------- A/B


def row(setting: str, labels: list[str], ratio: float, detectable: float = 0.05, status: str = "ok") -> dict:
    """One setting of `vitcnn ab --json`, as probe.Probe reads it."""
    return {"id": setting, "status": {"A": "ok", "B": status},
            "verdict": {"labels": labels, "regression": "slower" in labels, "ratio": ratio, "ci": [ratio, ratio],
                        "p_adjusted": 0.5, "detectable": detectable, "processes": 3, "detail": ""}}


@pytest.mark.parametrize("probe, state, label", [
    (Probe(1, [row("s", ["slower"], 1.12)], "", 3), CONFIRMED, "confirmed by A/B: slower +12.0%"),
    (Probe(0, [row("s", ["same"], 0.99)], "", 3), DRIFT, "machine drift, not confirmed (A/B: same -1.0%)"),
    (Probe(0, [row("s", ["faster"], 0.9)], "", 3), DRIFT, "machine drift, not confirmed (A/B: faster -10.0%)"),
    (Probe(0, [row("s", ["inconclusive"], 1.1, 0.43)], "", 3), UNCONFIRMED,
     "not confirmed (A/B inconclusive, could have seen +43.0%)"),
    (Probe(2, [], "", 3), UNCONFIRMED, "not confirmed (the A/B did not run (exit 2))"),
    (Probe(1, [row("s", ["now-error"], 1.0, status="error")], "", 3), UNCONFIRMED,
     "not confirmed (the A/B did not measure both sides (A ok, B error))"),
])
def test_an_ab_confirms_a_slowdown_only_by_its_slower_label(probe, state, label):
    found = confirm.by_ab(the_change(step(10.0, 12.0)), probe)
    assert (found.state, found.label) == (state, label)


def test_the_ab_decides_and_the_store_evidence_stays_beside_it():
    store = Confirmation(UNCONFIRMED, f"no instructions series; {confirm.AB_HINT}")
    ab = Confirmation(CONFIRMED, "A/B: slower +12.0%")
    assert confirm.combined(store, ab).label == "confirmed by A/B: slower +12.0%; no instructions series"


def test_findings_ask_the_ab_only_about_regressions_still_in_effect_newest_first_until_one_is_confirmed():
    """Levels 10, 13, 16 (two regressions, both in effect) and an improvement on another series: the A/B is asked
    about the newest regression first; once it confirms, the older one is not asked about."""
    rising = series_of([10.0] * 6 + [13.0] * 6 + [16.0] * 6, setting="rising")
    falling = series_of([10.0] * 6 + [8.0] * 6, setting="falling")
    undone = series_of([10.0] * 6 + [13.0] * 6 + [10.0] * 6, setting="undone")
    asked = []

    def ab(change):
        asked.append((change.series.setting_id, change.index))
        return Confirmation(CONFIRMED, "A/B: slower")

    found = check.findings([rising, falling, undone], ab=ab)
    assert asked == [("rising", 12)]
    by = {(f.change.series.setting_id, f.change.index): f for f in found}
    assert by[("rising", 12)].fails and check.verdict(by[("rising", 12)]) == "REGRESSION"
    assert check.verdict(by[("rising", 6)]) == "regression (not confirmed)"
    assert not by[("falling", 6)].fails and check.verdict(by[("undone", 6)]) == "regression (undone later)"
    asked.clear()
    check.findings([rising], ab=lambda change: asked.append(change.index) or Confirmation(DRIFT, "A/B: same"))
    assert asked == [12, 6]  # neither confirmed: both asked, nothing fails


def test_a_regression_the_counts_confirm_is_never_sent_to_an_ab():
    latency = step(10.0, 12.0)
    counts = step(1e9, 1.2e9, metric="instructions")
    found = check.findings([latency], evidence=[latency, counts], ab=lambda change: pytest.fail("A/B asked"))
    assert [f.fails for f in found] == [True]


# ------------------------------------------------------------------------------------------ --confirm ab, wired


@pytest.fixture
def store(tmp_path) -> Path:
    """The planted store (vit_t16 settings 15% slower from commit 9 on), no instruction counts."""
    root = tmp_path / "store"
    HistoryStore(root, create=True).add(planted_runs(tmp_path / "runs", step=1.15))
    return root


def wire(monkeypatch, labels: list[str], ratio: float, here: str = SMOKE_MACHINE) -> list:
    """Replace the real A/B session and this machine's identity; every session asked for is recorded."""
    sessions = []

    def session(options):
        sessions.append(options)
        return Probe(int("slower" in labels), [row(s.id, labels, ratio) for s in options.settings], "", 3)

    monkeypatch.setattr(confirm, "ab_session", session)
    monkeypatch.setattr(confirm, "this_machine", lambda device: here)
    return sessions


def test_confirm_ab_runs_one_session_per_regression_with_its_two_commits_and_setting(store, monkeypatch, capsys):
    sessions = wire(monkeypatch, ["slower"], 1.15)
    assert cli(["history", "check", str(store), "--confirm", "ab"]) == 1
    out, err = capsys.readouterr()
    failing = [line for line in out.splitlines() if line.startswith("REGRESSION")]
    assert len(failing) == len(sessions) == 8
    assert all(line.endswith("confirmed by A/B: slower +15.0%; no instructions series") for line in failing)
    for options in sessions:
        [setting] = options.settings
        assert (options.a.ref, options.b.ref) == (fake_commit(8), fake_commit(9))
        assert setting.model == "vit_t16" and options.profile == "smoke" and options.device == "cpu"
        assert (options.a.name, options.b.name, options.metric) == ("A", "B", "time")
    assert {o.settings[0].id for o in sessions} == {line.split()[2] for line in failing}
    assert err.count("with vitcnn ab") == 8


def test_confirm_ab_same_is_machine_drift_and_passes(store, monkeypatch, capsys):
    wire(monkeypatch, ["same"], 1.01)
    assert cli(["history", "check", str(store), "--confirm", "ab"]) == 0
    held = [line for line in capsys.readouterr().out.splitlines() if line.startswith("regression (not confirmed)")]
    assert len(held) == 8
    assert all(line.endswith("machine drift, not confirmed (A/B: same +1.0%; no instructions series)")
               for line in held)


def test_confirm_ab_measures_nothing_for_another_machines_series(store, monkeypatch, capsys):
    sessions = wire(monkeypatch, ["slower"], 1.15, here="some-other-machine")
    assert cli(["history", "check", str(store), "--confirm", "ab"]) == 0
    assert sessions == []
    out = capsys.readouterr().out
    assert out.count(f"not confirmed (no A/B: the series is of {SMOKE_MACHINE}, this machine is "
                     f"some-other-machine; no instructions series)") == 8
