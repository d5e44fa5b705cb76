"""The PNG figures: one set per device, batch and metric, of a sensible size (vitcnn/report/figures.py)."""

from __future__ import annotations

from pathlib import Path

from tests.factories import CPU_FINGERPRINT, GPU_FINGERPRINT
from tests.report.helpers import make_run, ok, png_size
from vitcnn import report as rp
from vitcnn.report import figures


def test_two_devices_get_two_figure_sets(two_device_report):
    path, gpu, cpu = two_device_report
    pngs = sorted(path.parent.glob("*.png"))
    for run, batches in ((gpu, (1, 8)), (cpu, (1, 2))):
        for metric in ("throughput", "latency", "activation_memory", "flops", "mfu"):
            for batch in batches:
                assert path.parent / f"{metric}_{run.slug}_bs{batch}.png" in pngs
    assert len(pngs) == 2 * 2 * 5
    for png in pngs:
        width, height = png_size(png)
        assert width >= 400 and height >= 300


def test_same_device_runs_merge_into_one_figure_set(tmp_path):
    first = make_run(ok("vit_b16", 224, ms=10), ok("convnext_b", 224, ms=5), path="a.json")
    second = make_run(ok("vit_b16", 224, ms=2), path="b.json")
    rp.write_report([first, second], tmp_path)
    assert len(list(tmp_path.glob("throughput_*_bs1.png"))) == 1


def _legend_labels(run, metric_key: str) -> list[str]:
    from vitcnn.report.analysis import analyse

    [analysis] = analyse([run])
    plan = next(p for p in analysis.plans if p.metric.key == metric_key and p.batch == 1)
    fig = figures._pyplot_free_figure()
    ax = fig.add_subplot()
    at_batch = [b for point, b in analysis.bests.items() if point[2] == 1]
    styles = figures._model_styles([b.model for b in at_batch])
    handles = figures._plot_lines(ax, plan.metric, at_batch, styles)
    handles += figures._plot_flops_errors(ax, plan.metric, at_batch, styles)
    return [h.get_label() for h in handles]


def test_mfu_legend_names_only_the_lines_drawn():
    cpu = make_run(ok("vit_t16", 64, flops=1e9, peak_tflops_matmul=0.2), fp=CPU_FINGERPRINT)
    assert _legend_labels(cpu, "mfu") == ["vit_t16", "vs measured matmul (dashed)"]  # no spec peak on a CPU
    gpu = make_run(ok("vit_b16", 224, flops=1e9, peak_tflops_spec=989.4, peak_tflops_matmul=700.0),
                   fp=GPU_FINGERPRINT)
    assert _legend_labels(gpu, "mfu") == ["vit_b16", "vs spec peak (solid)", "vs measured matmul (dashed)"]


def test_flop_count_errors_are_marked_in_flop_figures_only():
    run = make_run(ok("vit_t16", 64, flops=1e9, peak_tflops_matmul=0.2, flops_error="attention not counted"),
                   fp=CPU_FINGERPRINT)
    assert "FLOP count incomplete" in _legend_labels(run, "flops")
    assert "FLOP count incomplete" in _legend_labels(run, "mfu")
    assert "FLOP count incomplete" not in _legend_labels(run, "throughput")


def test_a_metric_without_data_gets_a_not_measured_panel(tmp_path):
    from matplotlib.figure import Figure

    texts = []
    original = Figure.savefig

    def keep_text(fig, path, *args, **kwargs):
        texts.append((Path(path).name, [t.get_text() for ax in fig.axes for t in ax.texts]))
        return original(fig, path, *args, **kwargs)

    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Figure, "savefig", keep_text)
        rp.write_report([make_run(ok("vit_t16", 64), fp=CPU_FINGERPRINT)], tmp_path)
    panels = dict(texts)
    memory = next(v for k, v in panels.items() if k.startswith("activation_memory"))
    assert any(t.startswith("not measured on CPU") for t in memory)
    throughput = next(v for k, v in panels.items() if k.startswith("throughput"))
    assert not any("not measured" in t for t in throughput)
