"""report.md: sections in order, every setting with its status, unmeasured metrics said, no matplotlib."""

from __future__ import annotations

import pytest

from tests.factories import setting
from tests.report.helpers import make_run, ok
from vitcnn import report as rp
from vitcnn.report import figures


def test_report_sections_in_order(two_device_report):
    path, gpu, cpu = two_device_report
    text = path.read_text()
    assert path.name == "report.md"
    order = [text.index(h) for h in ("## Machines", "## Claims check", "## Best setting", "## All settings", "## Figures")]
    assert order == sorted(order)
    assert "NVIDIA H100 80GB HBM3" in text and "CPU measurement: Test CPU" in text
    assert "| **PASS** | vitdet_b16 is faster than convnext_b at 1024 px" in text


def test_full_table_lists_every_setting_with_status(two_device_report):
    path, gpu, cpu = two_device_report
    text = path.read_text()
    for run in (gpu, cpu):
        for sid in run.results:
            assert f"| {sid} |" in text
    oom_id = setting("vit_b16", 1024, 8, "bf16", compile_mode="default").id
    assert f"| {oom_id} | oom |" in text and "CUDA out of memory \\| tried 2 GiB more" in text
    assert "| error |" in text and "| skipped |" in text
    assert "| vit_b16 | 1024 | 8 | oom |" in text  # the best table shows the all-failed point


def test_unmeasured_metric_is_said_not_silent(two_device_report):
    path, gpu, cpu = two_device_report
    text = path.read_text()
    assert f"activation_memory_{cpu.slug}_bs1.png) (not measured on this device)" in text
    assert f"activation_memory_{gpu.slug}_bs1.png) (not" not in text


def test_report_without_runs_is_still_markdown():
    assert "No runs given" in rp.report_markdown([])


def test_report_without_matplotlib_says_so(tmp_path, monkeypatch):
    def no_matplotlib(runs, out_dir):
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(figures, "make_figures", no_matplotlib)
    text = rp.write_report([make_run(ok("vit_b16", 224))], tmp_path).read_text()
    assert "Figures not written: matplotlib is not available" in text
