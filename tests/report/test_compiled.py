"""The report's torch.compile section and its speedup figure (vitcnn/report/compiled.py, figures.py)."""

from __future__ import annotations

import math

from tests.factories import CPU_FINGERPRINT
from tests.report.helpers import make_run, ok, png_size
from vitcnn import report as rp
from vitcnn.report import compiled

TWIN = {"compile_time_s": 1.2, "compile_cold_s": 18.3, "compile_warm_s": 0.93, "graphs": 1, "graph_breaks": 0,
        "recompiles": 0, "speedup_vs_eager": 1.346, "speedup_ci_low": 1.314, "speedup_ci_high": 1.378,
        "speedup_log_ratios": [math.log(1.346)] * 10, "memory_compression": 0.48}


def test_the_section_gives_compile_times_counts_speedup_with_its_interval_and_compression():
    run = make_run(ok("vit_b16", 224, **TWIN), ok("convnext_b", 224, **{**TWIN, "speedup_ci_low": None}),
                   fp=CPU_FINGERPRINT)
    text = compiled.compile_markdown(run.results, run.slug)
    vit = next(line for line in text.splitlines() if line.startswith("| vit_b16"))
    assert [c.strip() for c in vit.split("|")[2:-1]] == ["1.20", "18.3", "0.93", "1", "0", "0",
                                                          "1.35x (1.31–1.38)", "0.48x"]
    assert "1.35x (unbounded)" in next(line for line in text.splitlines() if line.startswith("| convnext_b"))
    assert f"speedup-vs-eager-{run.slug}.png" in text


def test_no_compiled_setting_means_no_section_and_no_speedup_means_no_figure_link(tmp_path):
    assert compiled.compile_markdown({}, "x") is None
    run = make_run(ok("vit_b16", 224, compile_time_s=3.0), fp=CPU_FINGERPRINT)
    text = compiled.compile_markdown(run.results, run.slug)
    assert "| 3.00 |" in text and "figure" not in text
    rp.write_report([run], tmp_path)
    assert not list(tmp_path.glob("speedup-vs-eager-*.png"))


def test_the_report_draws_the_speedup_figure_and_links_it(tmp_path):
    run = make_run(ok("vit_b16", 224, **TWIN), ok("vit_b16", 512, **{**TWIN, "speedup_vs_eager": 2.0,
                                                                    "speedup_ci_high": 2.2}), fp=CPU_FINGERPRINT)
    path = rp.write_report([run], tmp_path)
    figure = tmp_path / f"speedup-vs-eager-{run.slug}.png"
    assert figure.exists() and png_size(figure)[0] >= 400
    assert "## torch.compile" in path.read_text() and figure.name in path.read_text()
    points = compiled.speedup_points(run.results)
    assert [(p.resolution, p.speedup) for p in points] == [(224, 1.346), (512, 2.0)]
