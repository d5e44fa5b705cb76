"""The end-of-run table: numbers for ok settings from the one Run record, the reason for the others, FLOP-count
errors shown, never silent."""

from __future__ import annotations

from pathlib import Path

from tests.factories import make_run, result, setting
from vitcnn.runfile import load_run
from vitcnn.summary import busy_host_warning, summary_table

GOLDEN = Path(__file__).resolve().parent / "data" / "cpu-smoke" / "summary.txt"


def _row(lines: list[str], setting_id: str) -> str:
    return next(line for line in lines if line.startswith(setting_id))


def test_rows_for_ok_and_failed_settings():
    ok, oom = setting("vit_t16"), setting("convnext_atto")
    run = make_run(result(ok, samples=[0.0125] * 5, flops=0.5e12 * 0.0125, peak_tflops_matmul=2.0,
                          activation_peak_bytes=3 * 2**20, sdpa_backend_used="flash", speedup_vs_eager=1.346),
                   result(oom, status="oom", reason="CUDA out of memory"))
    lines = summary_table(run).splitlines()
    assert lines[0].split()[:2] == ["setting", "status"] and set(lines[1]) == {"-"}
    assert _row(lines, ok.id).split()[1:] == ["ok", "12.500", "80.0", "0.50", "25.0%", "(mm)", "3.0", "1.35x",
                                             "flash"]
    oom_row = _row(lines, oom.id)
    assert " oom " in oom_row and oom_row.endswith("CUDA out of memory")
    assert lines[0].split()[-1] == "note"


def test_median_comes_from_the_raw_samples():
    s = setting()
    run = make_run(result(s, samples=[0.001, 0.002, 0.009]))
    run.results[s.id].stats["median"] = 0.5  # a stale summary statistic must not win over the samples
    assert _row(summary_table(run).splitlines(), s.id).split()[2] == "2.000"


def test_a_flop_count_error_is_shown_in_the_note_and_marks_flop_numbers():
    s = setting()
    run = make_run(result(s, samples=[0.01] * 5, flops=1e9, peak_tflops_matmul=1.0,
                          flops_error="no attention FLOPs counted for a model with attention"))
    row = _row(summary_table(run).splitlines(), s.id)
    assert "FLOP count incomplete: no attention FLOPs counted" in row
    assert "0.10 !" in row and "10.0% (mm) !" in row


def test_graph_breaks_and_recompiles_are_noted_when_there_are_any():
    broken, clean = setting(), setting(resolution=128)
    run = make_run(result(broken, samples=[0.01] * 5, graph_breaks=2, recompiles=3),
                   result(clean, samples=[0.01] * 5, graph_breaks=0, recompiles=0))
    lines = summary_table(run).splitlines()
    assert _row(lines, broken.id).endswith("2 graph breaks; 3 recompiles")
    assert "graph breaks" not in _row(lines, clean.id)


def test_busy_host_is_warned_about():
    quiet = result(setting(), host_load_1m=1.9)
    busy = result(setting(resolution=128), host_load_1m=4.2)
    assert busy_host_warning(make_run(quiet), cpu_count=2) is None
    warning = busy_host_warning(make_run(quiet, busy), cpu_count=2)
    assert "4.2 on 2 cores" in warning and "1 setting(s)" in warning


def test_table_of_the_committed_smoke_run_is_unchanged():
    run = load_run(Path(__file__).resolve().parents[1] / "results" / "cpu-smoke" / "run.json")
    assert summary_table(run, cpu_count=2) + "\n" == GOLDEN.read_text()
