"""`vitcnn history check` (vitcnn/history/check.py): which change points are regressions, which series fail (their
latest change is one), tolerances per metric and overridden, and the command on a history with a planted step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.history.planted import REAL_RUN, fake_commit, planted_runs
from vitcnn.cli import main as cli
from vitcnn.history.check import findings, render, rows
from vitcnn.history.series import METRICS, Point, Series
from vitcnn.history.store import HistoryStore

REPO = Path(__file__).resolve().parents[2]


def series_of(levels: list[tuple[float, int]], metric: str = "latency", setting: str = "setting") -> Series:
    """A noiseless series: `levels` are (value, number of commits) in commit order; commit i is named c<i>."""
    values = [value for value, count in levels for _ in range(count)]
    points = [Point(f"c{i:02d}", f"2026-01-01T00:{i:02d}:00+00:00", value) for i, value in enumerate(values)]
    return Series("machine", setting, METRICS[metric], points)


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


@pytest.mark.parametrize("metric, step, fails", [
    ("latency", 1.08, False), ("latency", 1.12, True),  # 10%
    ("activation_memory", 1.04, False), ("activation_memory", 1.06, True),  # 5%
    ("compile_time", 1.2, False), ("compile_time", 1.3, True),  # 25%
])
def test_each_metric_has_its_own_tolerance(metric, step, fails):
    base = 4.0 * 2**20 if metric == "activation_memory" else 10.0
    [finding] = findings([series_of([(base, 10), (base * step, 5)], metric)])
    assert finding.fails is fails


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


def planted_store(tmp_path: Path, step: float) -> Path:
    store = tmp_path / "store"
    added = HistoryStore(store, create=True).add(planted_runs(tmp_path / "runs", step=step))
    assert [a.outcome for a in added] == ["added"] * 14
    return store


def test_history_check_finds_the_planted_commit_range(tmp_path):
    """tests/history/planted.py: commits 9.. of a real smoke run's settings with vit_t16 in their id are 15% slower
    (2% noise per commit): `python -m vitcnn history check` must name fake_commit(8)..fake_commit(9) for exactly
    those settings' latency, and exit 1."""
    store = planted_store(tmp_path, step=1.15)
    markdown = tmp_path / "check.md"
    done = subprocess.run([sys.executable, "-m", "vitcnn", "history", "check", str(store), "--markdown",
                           str(markdown)], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    planted_range = f"{fake_commit(8)[:10]}..{fake_commit(9)[:10]}"
    failing = [line for line in done.stdout.splitlines() if line.startswith("REGRESSION")]
    planted_ids = {b["extra_info"]["setting_id"] for b in _real_benchmarks() if "vit_t16" in b["name"]}
    assert len(failing) == len(planted_ids) == 8
    for line in failing:
        assert planted_range in line and "median latency" in line and "+1" in line
    assert {_setting_in(line, planted_ids) for line in failing} == planted_ids
    assert markdown.read_text().count("| REGRESSION |") == 8
    assert done.stdout.splitlines()[-1].endswith("8 series ending in a regression")


def _real_benchmarks() -> list[dict]:
    return json.loads(REAL_RUN.read_text())["benchmarks"]


def _setting_in(line: str, ids: set[str]) -> str:
    [found] = [i for i in ids if f" {i} " in line]
    return found


def test_history_check_passes_a_flat_planted_store(tmp_path, capsys):
    store = planted_store(tmp_path, step=1.0)
    markdown = tmp_path / "check.md"
    assert cli(["history", "check", str(store), "--markdown", str(markdown)]) == 0
    out = capsys.readouterr().out
    assert "REGRESSION" not in out and out.splitlines()[-1].endswith("0 series ending in a regression")
    assert markdown.exists()


def test_history_check_options_select_metrics_and_machines(tmp_path, capsys):
    store = planted_store(tmp_path, step=1.15)
    assert cli(["history", "check", str(store), "--metric", "activation_memory"]) == 0  # memory did not move
    assert cli(["history", "check", str(store), "--tolerance", "0.2"]) == 0  # 15% is within 20%
    assert cli(["history", "check", str(store), "--machine", "another-machine"]) == 0
    capsys.readouterr()
    assert cli(["history", "check", str(store), "--metric", "latency", "--tolerance", "0.1"]) == 1
