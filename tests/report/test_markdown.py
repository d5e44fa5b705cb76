"""report.md: sections in order, every setting with its status, unmeasured metrics said, no matplotlib."""

from __future__ import annotations


from tests.factories import (
    CPU_FINGERPRINT,
    GPU_FINGERPRINT,
    LEGACY_CPU_FINGERPRINT,
    amx_machine,
    non_amx_machine,
    setting,
)
from tests.report.helpers import make_run, ok
from vitcnn import report as rp
from vitcnn.report import figures, markdown


def test_report_sections_in_order(two_device_report):
    path, gpu, cpu = two_device_report
    text = path.read_text()
    assert path.name == "report.md"
    order = [text.index(h) for h in ("## Machines", "## Claims check", "## Best setting", "## All settings", "## Figures")]
    assert order == sorted(order)
    assert "NVIDIA H100 80GB HBM3" in text and "CPU measurement: Test CPU" in text
    assert "| **PASS** | vitdet_b16 is faster than convnext_b at the largest resolution measured (essay: 1024 px) | decided at 1024 px, batch 1" in text


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
    assert f"activation_memory_{cpu.slug}_bs1.png) (not measured on CPU)" in text
    assert f"activation_memory_{gpu.slug}_bs1.png) (not" not in text


def test_report_without_runs_is_still_markdown():
    assert "No runs given" in rp.report_markdown([])


def test_report_without_matplotlib_says_so(tmp_path, monkeypatch):
    def no_matplotlib(runs, out_dir):
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(figures, "make_figures", no_matplotlib)
    text = rp.write_report([make_run(ok("vit_b16", 224))], tmp_path).read_text()
    assert "Figures not written: matplotlib is not available" in text


# ------------------------------------------------------------------------------- honest on every device (issue 9)


def test_cpu_only_report_has_no_gpu_rows():
    text = rp.report_markdown([make_run(ok("vit_t16", 64), fp=CPU_FINGERPRINT)])
    machines = text.split("## Claims check")[0]
    for row in ("| CUDA |", "| cuDNN |", "| GPU |", "| driver |"):
        assert row not in machines
    assert "| CPU | Test CPU |" in machines and "| torch | 2.15.0 |" in machines


def test_machine_table_tells_amx_from_non_amx():
    text = rp.report_markdown([make_run(ok("vit_b16", 1024), fp=amx_machine()),
                               make_run(ok("vit_b16", 1024, ms=5770.0), fp=non_amx_machine())])
    machines = text.split("## Claims check")[0]
    assert "CPU measurement: Intel(R) Xeon(R) Processor, 2 cores, with AMX" in machines
    assert "CPU measurement: Intel(R) Xeon(R) Processor, 2 cores, AVX-512, no AMX" in machines
    assert "| CPU ISA level (torch) | AVX512 | AVX512 |" in machines
    assert "| CPU vendor, family, model | GenuineIntel, family 6, model 167, stepping 1 | GenuineIntel, family 6, " \
           "model 207, stepping 1 |" in machines
    assert "| identity | complete | complete |" in machines
    assert "### CPU measurement: Intel(R) Xeon(R) Processor, 2 cores, with AMX" in text  # every table says which


def test_machine_table_shows_gpu_clocks_and_power_and_an_old_identity():
    text = rp.report_markdown([make_run(ok("vit_b16", 224), fp={**GPU_FINGERPRINT, "gpu_power_limit_w": 400}),
                               make_run(ok("vit_b16", 224), fp=LEGACY_CPU_FINGERPRINT)])
    machines = text.split("## Claims check")[0]
    assert "| power limit | 400 W of default 700 W (capped below the default) | n/a |" in machines
    assert "| max clocks | SM 1980 / memory 2619 MHz | n/a |" in machines
    assert "| identity | complete | incomplete (older vitcnn; lacks cpu_vendor" in machines


def test_mixed_report_says_n_a_for_a_cpu_and_formats_cudnn(two_device_report):
    path, gpu, cpu = two_device_report
    text = path.read_text()
    assert "| cuDNN | 9.13.0 | n/a |" in text and "| CUDA | 13.0 | n/a |" in text
    assert "91300" not in text


def test_cudnn_versions_read_as_versions():
    assert [markdown.cudnn_version(v) for v in (92400, 91300, 8907, None)] == ["9.24.0", "9.13.0", "8.9.7", None]


def test_not_measured_is_keyed_on_missing_data_not_on_the_device():
    measured = make_run(ok("vit_t16", 64, activation_peak_bytes=5 * 2**20), fp=CPU_FINGERPRINT)
    memory_row = next(line for line in rp.report_markdown([measured]).splitlines()
                      if line.startswith("| Activation peak memory"))
    assert "activation_memory" in memory_row and "not measured" not in memory_row
    gpu_without = rp.report_markdown([make_run(ok("vit_b16", 224), fp=GPU_FINGERPRINT)])
    assert "(not measured on this device)" in gpu_without


def test_flop_count_errors_are_flagged_not_silent():
    error = "no attention FLOPs counted for a model with attention"
    run = make_run(ok("vit_b16", 224, flops=1e9, peak_tflops_matmul=100.0, flops_error=error),
                   ok("convnext_b", 224, flops=2e9), fp=GPU_FINGERPRINT)
    text = rp.report_markdown([run])
    vit_row = next(line for line in text.splitlines() if line.startswith("| vit_b16-224px"))
    assert "⚠" in vit_row and f"FLOP count incomplete: {error}" in vit_row
    cnn_row = next(line for line in text.splitlines() if line.startswith("| convnext_b-224px"))
    assert "⚠" not in cnn_row
    assert "**FLOP count incomplete** for 1 setting(s)" in text
    figures_index = text.split("## Figures")[1]
    assert figures_index.count("⚠ FLOP count incomplete") == 2  # the FLOPs and MFU figures, not the others
