"""The PNG figures: one set per device, batch and metric, of a sensible size (vitcnn/report/figures.py)."""

from __future__ import annotations

from tests.report.helpers import make_run, ok, png_size
from vitcnn import report as rp


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
