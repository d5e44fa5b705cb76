"""`vitcnn history check` (vitcnn/history/check.py): which change points are regressions, which series fail (their
latest confirmed regression is still in effect), tolerances per metric and overridden, and the command on
histories with a planted step: confirmed by instruction counts that step too, machine drift where they stay flat,
not confirmed without counts, and on the committed history of this project's VM."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.history.planted import REAL_RUN, fake_commit, planted_runs
from vitcnn.cli import main as cli
from vitcnn.history import check
from vitcnn.history.check import render, rows
from vitcnn.history.series import METRICS, Point, Series
from vitcnn.history.store import HistoryStore

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "results" / "history"


def series_of(levels: list[tuple[float, int]], metric: str = "latency", setting: str = "setting") -> Series:
    """A noiseless series: `levels` are (value, number of commits) in commit order; commit i is named c<i>."""
    values = [value for value, count in levels for _ in range(count)]
    points = [Point(f"c{i:02d}", f"2026-01-01T00:{i:02d}:00+00:00", value) for i, value in enumerate(values)]
    return Series("machine", setting, METRICS[metric], points)


def counted(series: list[Series]) -> list[Series]:
    """The series, each with an instruction series of its machine and setting that steps exactly as it does: every
    change point of a series that instructions can confirm is the code's."""
    return [*series, *(Series(s.machine, s.setting_id, METRICS["instructions"], [replace(p) for p in s.points])
                       for s in series)]


def findings(series: list[Series], tolerance: float | None = None) -> list[check.Finding]:
    """check.findings with every change point confirmed where instructions can confirm it (see `counted`)."""
    return check.findings(series, tolerance, evidence=counted(series))


def verdicts(found) -> list[str]:
    return [row[0] for row in rows(found)]


# --------------------------------------------------------------------------------------------------- verdicts


def test_a_series_ending_in_a_regression_fails():
    [finding] = findings([series_of([(10.0, 10), (13.0, 5)])])
    assert finding.regression and finding.latest and finding.fails
    assert (finding.change.last_good, finding.change.first_bad) == ("c09", "c10")
    assert verdicts([finding]) == ["REGRESSION"]
    assert rows([finding])[0][4] == "c09..c10"
    assert rows([finding])[0][7] == "+30.0%"


def test_a_regression_undone_later_is_listed_but_does_not_fail():
    found = findings([series_of([(10.0, 8), (13.0, 6), (10.0, 6)])])
    assert [f.change.index for f in found] == [14, 8]  # newest first
    assert [f.fails for f in found] == [False, False]
    assert verdicts(found) == ["improvement", "regression (undone later)"]


def test_a_regression_only_partly_undone_still_fails():
    found = findings([series_of([(10.0, 8), (15.0, 6), (13.0, 6)])])  # +50%, then -13%: still +30%
    assert [(f.change.index, f.fails) for f in found] == [(14, False), (8, True)]
    assert verdicts(found) == ["improvement", "REGRESSION"]


def test_a_regression_followed_by_a_rise_within_tolerance_still_fails():
    found = findings([series_of([(10.0, 8), (13.0, 6), (13.6, 6)])])  # +30%, then +4.6%
    assert verdicts(found) == ["change within tolerance", "REGRESSION"]


def test_only_the_newest_regression_of_a_series_fails():
    found = findings([series_of([(10.0, 6), (13.0, 6), (10.0, 6), (12.0, 6)])])
    assert [(f.change.index, f.fails) for f in found] == [(18, True), (12, False), (6, False)]
    assert verdicts(found) == ["REGRESSION", "improvement", "regression (undone later)"]


def test_the_reference_is_the_level_before_the_newest_regression():
    """+30%, -12%, +17%, -7%: the newest regression (+17% from 11.5) is undone to within 10% of 11.5, so the series
    passes, although it ends 25% above where it started (the first regression was judged undone when it fell)."""
    found = findings([series_of([(10.0, 5), (13.0, 5), (11.5, 5), (13.5, 5), (12.5, 5)])])
    assert [f.change.index for f in found] == [20, 15, 10, 5]
    assert not any(f.fails for f in found)


def test_an_undone_regression_within_tolerance_of_the_old_level_passes():
    # back to +5% of where it was before the +30%: within latency's 10%, so undone
    found = findings([series_of([(10.0, 8), (13.0, 6), (10.5, 6)])])
    assert not any(f.fails for f in found)


def test_an_improvement_and_a_change_within_tolerance_do_not_fail():
    improved = findings([series_of([(10.0, 10), (8.0, 5)])])
    within = findings([series_of([(10.0, 10), (10.8, 5)])])  # +8% latency: under the 10% default
    assert verdicts(improved) == ["improvement"] and verdicts(within) == ["change within tolerance"]
    assert not any(f.fails for f in improved + within)


@pytest.mark.parametrize("metric, step, regression", [
    ("latency", 1.08, False), ("latency", 1.12, True),  # 10%
    ("activation_memory", 1.04, False), ("activation_memory", 1.06, True),  # 5%
    ("instructions", 1.005, False), ("instructions", 1.02, True),  # 1%
    ("compile_time", 1.2, False), ("compile_time", 1.3, True),  # 25%
])
def test_each_metric_has_its_own_tolerance(metric, step, regression):
    """... and a compile time's regression never fails: neither an instruction count nor an A/B of one setting
    can confirm it (confirm.py)."""
    base = 4.0 * 2**20 if metric == "activation_memory" else 10.0
    [finding] = findings([series_of([(base, 10), (base * step, 5)], metric)])
    assert finding.regression is regression
    assert finding.fails is (regression and metric != "compile_time")
    if metric == "compile_time":
        assert finding.confirmation.label == "not confirmed (no instrument confirms this timed metric)"
        assert verdicts([finding]) == ["regression (not confirmed)" if regression else "change within tolerance"]


@pytest.mark.parametrize("tolerance, fails", [(0.05, True), (0.10, False), (0.0, True), (0.5, False)])
def test_the_tolerance_option_overrides_every_metric(tolerance, fails):
    latency = series_of([(10.0, 10), (10.8, 5)])  # +8%
    memory = series_of([(100.0, 10), (108.0, 5)], "activation_memory")  # +8%
    assert [f.fails for f in findings([latency, memory], tolerance)] == [fails, fails]


def test_no_change_points_say_so():
    assert findings([series_of([(10.0, 20)])]) == []
    assert render([]) == "no change points in any series\n"


def test_findings_of_many_series_are_newest_first_and_markdown_renders_them():
    older = series_of([(10.0, 5), (13.0, 15)], setting="a")
    newer = series_of([(10.0, 15), (13.0, 5)], setting="b")
    found = findings([older, newer])
    assert [f.change.series.setting_id for f in found] == ["b", "a"]
    markdown = render(found, markdown=True)
    assert markdown.count("| REGRESSION |") == 2 and "c14..c15" in markdown and "c04..c05" in markdown


# ------------------------------------------------------------------------------------- the command, planted

PLANTED_RANGE = f"{fake_commit(8)[:10]}..{fake_commit(9)[:10]}"
HELD = "regression (not confirmed)"


def planted_store(tmp_path: Path, step: float, **counts) -> Path:
    """tests/history/planted.py's store: commits 9.. of the real smoke run's vit_t16 settings are `step` times
    slower (2% noise per commit); `counts` (count_step=...) make the runs carry instruction counts."""
    store = tmp_path / "store"
    added = HistoryStore(store, create=True).add(planted_runs(tmp_path / "runs", step=step, **counts))
    assert [a.outcome for a in added] == ["added"] * 14
    return store


def planted_ids() -> set[str]:
    return {b["extra_info"]["setting_id"] for b in _real_benchmarks() if "vit_t16" in b["name"]}


def test_history_check_fails_a_planted_step_the_instruction_counts_confirm(tmp_path):
    """The planted 15% slowdown with instruction counts that step by 15% at the same commits: `python -m vitcnn
    history check` must name fake_commit(8)..fake_commit(9) for exactly the vit_t16 settings' latency, confirmed by
    the counts, and their counts' own change points (deterministic: confirmed by themselves), and exit 1."""
    store = planted_store(tmp_path, step=1.15, count_step=1.15)
    markdown = tmp_path / "check.md"
    done = subprocess.run([sys.executable, "-m", "vitcnn", "history", "check", str(store), "--markdown",
                           str(markdown)], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    failing = [line for line in done.stdout.splitlines() if line.startswith("REGRESSION")]
    latency = [line for line in failing if "median latency" in line]
    counts = [line for line in failing if "instructions per call" in line]
    assert len(latency) == len(counts) == len(planted_ids()) == 8 and len(failing) == 16
    assert all(PLANTED_RANGE in line and "confirmed by instructions +1" in line for line in latency)
    assert all(PLANTED_RANGE in line and line.endswith("confirmed by itself (deterministic)") for line in counts)
    assert {_setting_in(line, planted_ids()) for line in latency} == planted_ids()
    assert markdown.read_text().count("| REGRESSION |") == 16
    assert "16 series ending in a regression" in done.stdout.splitlines()[-1]


def _real_benchmarks() -> list[dict]:
    return json.loads(REAL_RUN.read_text())["benchmarks"]


def _setting_in(line: str, ids: set[str]) -> str:
    [found] = [i for i in ids if f" {i} " in line]
    return found


def held_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(HELD)]


def test_a_planted_step_with_flat_instruction_counts_is_machine_drift_and_passes(tmp_path, capsys):
    """The same 15% slowdown, but the counts did not move: the work is the same, so the step is the machine's."""
    store = planted_store(tmp_path, step=1.15, count_step=1.0)
    assert cli(["history", "check", str(store)]) == 0
    out = capsys.readouterr().out
    held = held_lines(out)
    assert len(held) == 8 and {_setting_in(line, planted_ids()) for line in held} == planted_ids()
    assert all(PLANTED_RANGE in line and "machine drift, not confirmed (instructions flat, " in line for line in held)
    assert "REGRESSION" not in out and "instructions per call" not in out  # flat counts: no change point
    assert out.splitlines()[-1].endswith("0 series ending in a regression; 8 regression(s) not confirmed (they do "
                                         "not fail)")


def test_a_planted_step_without_instruction_counts_is_not_confirmed_and_passes(tmp_path, capsys):
    store = planted_store(tmp_path, step=1.15)
    assert cli(["history", "check", str(store)]) == 0
    held = held_lines(capsys.readouterr().out)
    assert len(held) == 8
    assert all(line.endswith("not confirmed (no instructions series; use --confirm ab)") for line in held)


def test_history_check_passes_a_flat_planted_store(tmp_path, capsys):
    store = planted_store(tmp_path, step=1.0, count_step=1.0)
    markdown = tmp_path / "check.md"
    assert cli(["history", "check", str(store), "--markdown", str(markdown)]) == 0
    out = capsys.readouterr().out
    assert "REGRESSION" not in out and "0 series ending in a regression" in out.splitlines()[-1]
    assert markdown.exists()


def test_history_check_options_select_metrics_and_machines(tmp_path, capsys):
    store = planted_store(tmp_path, step=1.15, count_step=1.15)
    assert cli(["history", "check", str(store), "--metric", "activation_memory"]) == 0  # memory did not move
    assert cli(["history", "check", str(store), "--tolerance", "0.2"]) == 0  # 15% is within 20%
    assert cli(["history", "check", str(store), "--machine", "another-machine"]) == 0
    capsys.readouterr()
    # only latency is listed, but the counts of the store still confirm it
    assert cli(["history", "check", str(store), "--metric", "latency", "--tolerance", "0.1"]) == 1
    out = capsys.readouterr().out
    assert "instructions per call" not in out and out.count("confirmed by instructions +1") == 8
    assert cli(["history", "check", str(store), "--tolerance", "-0.1"]) == 2
    assert "--tolerance must be >= 0" in capsys.readouterr().err


# --------------------------------------------------------------------------------------- the committed history


def test_every_change_point_of_the_committed_history_is_labelled_and_none_fails_unconfirmed(capsys):
    """results/history: the smoke profile at 15 commits of this project on the 2-core VM (19 runs), timed only,
    no instruction counts. Its 27 change points are all improvements (docs/history.md: the machine got faster
    over the morning); each must say whether it is confirmed, none can be (nothing but timing measured them), and
    none may fail the check."""
    store = HistoryStore(COMMITTED)
    from vitcnn.history import series

    found = check.findings(series.build((e.key, run) for e, run in store.runs()))
    assert len(found) == 27 and set(verdicts(found)) == {"improvement"}
    assert {f.confirmation.label for f in found} == {"not confirmed (no instructions series)",
                                                     "not confirmed (no instrument confirms this timed metric)"}
    assert not any(f.fails for f in found) and not any(f.confirmation.confirmed for f in found)
    assert cli(["history", "check", str(COMMITTED)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + 27 + 1
    assert all(line.endswith(")") and "not confirmed (" in line for line in lines[2:-1])
    assert lines[-1] == ("27 change point(s), 0 confirmed; 0 series ending in a regression; 0 regression(s) not "
                         "confirmed (they do not fail)")
