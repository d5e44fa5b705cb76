"""The report: best-setting selection, the claims check, report.md and figures, and the `report` CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import CPU_FINGERPRINT, GPU_FINGERPRINT, result, run_json, setting
from vitcnn import report as rp
from vitcnn.runfile import Result, parse_run

MIB = 2**20
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_run(*results, fp=None, path="<memory>", profile="blog-lite"):
    return parse_run(run_json(list(results), fp, profile), path)


def ok(model, res, batch=1, ms=10.0, precision="bf16", **extra):
    """An ok result of `model` whose every sample takes `ms` milliseconds per call."""
    sdpa = "flash" if model.startswith("vit") else None
    layout = "nchw" if model.startswith("vit") else "channels_last"
    s = setting(model, res, batch, precision, sdpa=sdpa, compile_mode="default", layout=layout)
    return result(s, samples=[ms / 1e3] * 5, **extra)


def failed(model, res, batch=1, status="oom", reason="CUDA out of memory", precision="bf16"):
    s = setting(model, res, batch, precision, compile_mode="default")
    return result(s, status=status, reason=reason)


def claims_of(*results) -> dict[str, rp.Claim]:
    return {c.key: c for c in rp.check_claims(make_run(*results, fp=GPU_FINGERPRINT).results)}


def claim(key, *results) -> rp.Claim:
    return claims_of(*results)[key]


# ----------------------------------------------------------------------------------------------- best settings


def test_best_is_fastest_ok_setting_and_counts_candidates():
    run = make_run(ok("vit_b16", 224, ms=5, precision="bf16"), ok("vit_b16", 224, ms=4, precision="fp16"),
                   failed("vit_b16", 224, precision="fp32", status="error", reason="boom"))
    best = rp.best_settings(run.results)[("vit_b16", 224, 1)]
    assert best.result.setting.precision == "fp16"
    assert best.latency_s == pytest.approx(0.004)
    assert best.images_per_s == pytest.approx(250)
    assert (best.candidates, best.ok_count, best.status) == (3, 2, "ok")


def test_tie_goes_to_smallest_setting_id():
    a, b = ok("vit_b16", 224, ms=5, precision="fp16"), ok("vit_b16", 224, ms=5, precision="bf16")
    best = rp.best_settings(make_run(a, b).results)[("vit_b16", 224, 1)]
    ids = sorted([a["status_entry"]["id"], b["status_entry"]["id"]])
    assert best.result.id == ids[0] and best.ties == (ids[1],)
    # the order of the input does not change the winner
    assert rp.best_settings(make_run(b, a).results)[("vit_b16", 224, 1)].result.id == ids[0]


def test_all_failed_point_shows_its_status():
    run = make_run(failed("vit_b16", 1024, status="oom", reason="out of memory"),
                   failed("vit_b16", 1024, precision="fp16", status="oom"),
                   failed("convnext_b", 1024, status="oom"), failed("convnext_b", 1024, precision="fp16", status="error"))
    bests = rp.best_settings(run.results)
    vit, cnn = bests[("vit_b16", 1024, 1)], bests[("convnext_b", 1024, 1)]
    assert not vit.ok and vit.status == "oom" and vit.reason == "out of memory" and vit.candidates == 2
    assert not cnn.ok and cnn.status == "oom/error"


def test_missing_points_are_absent_not_invented():
    bests = rp.best_settings(make_run(ok("vit_b16", 224), ok("convnext_b", 512, batch=8)).results)
    assert set(bests) == {("vit_b16", 224, 1), ("convnext_b", 512, 8)}


def test_fairness_notes_flag_unequal_candidate_counts():
    equal = make_run(ok("vit_b16", 224), ok("convnext_b", 224))
    assert rp.fairness_notes(rp.best_settings(equal.results)) == []
    unequal = make_run(ok("vit_b16", 224), ok("convnext_b", 224), ok("convnext_b", 224, precision="fp16"))
    [note] = rp.fairness_notes(rp.best_settings(unequal.results))
    assert "224 px, batch 1" in note and "ViTs had 1" in note and "CNNs 2" in note


POOL = [setting("vit_t16", res, batch, precision, sdpa=sdpa, compile_mode=mode)
        for res in (64, 128) for batch in (1, 2) for precision in ("fp32", "bf16")
        for sdpa in ("auto", "math") for mode in ("eager", "default")]


@st.composite
def result_sets(draw):
    """Distinct settings with random statuses and medians (ties likely: medians come from a small set)."""
    chosen = draw(st.lists(st.sampled_from(POOL), unique=True, min_size=1, max_size=len(POOL)))
    out = []
    for s in chosen:
        status = draw(st.sampled_from(["ok", "ok", "oom", "error", "skipped"]))
        median = draw(st.sampled_from([0.001, 0.002, 0.003, 0.005])) if status == "ok" else None
        out.append(Result(s, status, stats={"median": median} if median else {}))
    return out


@settings(max_examples=150, deadline=None)
@given(result_sets())
def test_best_invariants(results):
    bests = rp.best_settings(results)
    assert set(bests) == {(r.setting.model, r.setting.resolution, r.setting.batch) for r in results}
    for point, best in bests.items():
        here = [r for r in results if (r.setting.model, r.setting.resolution, r.setting.batch) == point]
        oks = [r for r in here if r.status == "ok"]
        assert best.candidates == len(here) and best.ok_count == len(oks)
        if not oks:
            assert best.result is None and best.status != "ok"
            continue
        assert best.result.status == "ok"  # never a failed setting
        assert all(best.latency_s <= r.median_s for r in oks)  # never slower than any ok candidate
        fastest = [r.id for r in oks if r.median_s == best.latency_s]
        assert best.result.id == min(fastest)  # deterministic tie-break
        assert set(best.ties) == set(fastest) - {best.result.id}


# ------------------------------------------------------------------------------------------------------ claims


def test_realtime_claim():
    assert claim("vit_realtime_1024", ok("vit_b16", 1024, ms=5)).verdict == rp.PASS  # 200 img/s
    failing = claim("vit_realtime_1024", ok("vit_b16", 1024, ms=20))
    assert failing.verdict == rp.FAIL and "50.0 img/s" in failing.evidence
    absent = claim("vit_realtime_1024", ok("vit_b16", 1024, batch=8, ms=5))  # batch 1 missing
    assert absent.verdict == rp.NOT_MEASURED and "batch 1" in absent.evidence
    oom = claim("vit_realtime_1024", failed("vit_b16", 1024, status="oom"))
    assert oom.verdict == rp.NOT_MEASURED and "oom" in oom.evidence


def test_vitdet_vs_convnext_claim_uses_smallest_common_batch():
    passing = claim("vitdet_faster_than_convnext_1024", ok("vitdet_b16", 1024, ms=5), ok("convnext_b", 1024, ms=8))
    assert passing.verdict == rp.PASS and passing.evidence.startswith("batch 1")
    failing = claim("vitdet_faster_than_convnext_1024", ok("vitdet_b16", 1024, ms=9), ok("convnext_b", 1024, ms=8))
    assert failing.verdict == rp.FAIL
    # batch 1 only for one of them: compare at batch 8, and say so
    at8 = claim("vitdet_faster_than_convnext_1024", ok("vitdet_b16", 1024, ms=5), ok("vitdet_b16", 1024, 8, ms=30),
                ok("convnext_b", 1024, 8, ms=40), failed("convnext_b", 1024, 1))
    assert at8.verdict == rp.PASS and at8.evidence.startswith("batch 8")
    missing = claim("vitdet_faster_than_convnext_1024", ok("vitdet_b16", 1024, ms=5), ok("convnext_b", 512, ms=1))
    assert missing.verdict == rp.NOT_MEASURED and "convnext_b at 1024 px: no setting" in missing.evidence


def test_memory_claim():
    def run(vit_bytes, cnn_bytes):
        return claim("vit_memory_le_convnext_1024", ok("vit_b16", 1024, activation_peak_bytes=vit_bytes),
                     ok("convnext_b", 1024, activation_peak_bytes=cnn_bytes))

    assert run(100 * MIB, 200 * MIB).verdict == rp.PASS
    assert run(200 * MIB, 200 * MIB).verdict == rp.PASS  # "<=" holds with equality
    failing = run(300 * MIB, 200 * MIB)
    assert failing.verdict == rp.FAIL and "300.0 MiB" in failing.evidence and "200.0 MiB" in failing.evidence
    unmeasured = run(None, None)
    assert unmeasured.verdict == rp.NOT_MEASURED and "not measured" in unmeasured.evidence
    assert claim("vit_memory_le_convnext_1024", ok("vit_b16", 1024)).verdict == rp.NOT_MEASURED


def test_vitdet_vs_vit_claim_lists_speedup_over_resolutions():
    results = [ok("vit_b16", 224, ms=2), ok("vitdet_b16", 224, ms=2.5), ok("vit_b16", 512, ms=6),
               ok("vitdet_b16", 512, ms=4), ok("vit_b16", 1024, ms=40), ok("vitdet_b16", 1024, ms=10)]
    passing = claim("vitdet_faster_than_vit_1024", *results)
    assert passing.verdict == rp.PASS
    assert "224 px 0.8x, 512 px 1.5x, 1024 px 4x" in passing.evidence
    failing = claim("vitdet_faster_than_vit_1024", ok("vit_b16", 1024, ms=10), ok("vitdet_b16", 1024, ms=12))
    assert failing.verdict == rp.FAIL
    partial = claim("vitdet_faster_than_vit_1024", *results[:4], failed("vit_b16", 1024), ok("vitdet_b16", 1024))
    assert partial.verdict == rp.NOT_MEASURED and "1024 px: bs1 oom" in partial.evidence
    assert "224 px 0.8x, 512 px 1.5x" in partial.evidence  # the curve is still reported


def test_flops_claim_and_attention_crossover():
    def flops_run(vit, cnn, attention=None):
        out = []
        for res, v, c in zip((224, 512, 1024), vit, cnn):
            out.append(ok("vit_b16", res, flops=v * 1e9, attention_flops=None if attention is None else attention[res]))
            out.append(ok("convnext_b", res, flops=c * 1e9))
        return out

    attention = {224: 2e9, 512: 30e9, 1024: 400e9}
    passing = claim("vit_flops_grow_faster", *flops_run((17.5, 100, 700), (15, 80, 320), attention))
    assert passing.verdict == rp.PASS
    assert "40x" in passing.evidence and "21.3x" in passing.evidence and "from 1024 px" in passing.evidence
    failing = claim("vit_flops_grow_faster", *flops_run((17.5, 20, 30), (15, 80, 320), {224: 1, 512: 1, 1024: 1}))
    assert failing.verdict == rp.FAIL and "not within measured range" in failing.evidence
    # FLOPs per image: a batch-8 count divides by 8
    batched = claim("vit_flops_grow_faster", ok("vit_b16", 224, 8, flops=8 * 17.5e9), ok("vit_b16", 1024, 8, flops=8 * 700e9),
                    ok("convnext_b", 224, flops=15e9), ok("convnext_b", 1024, flops=320e9))
    assert batched.verdict == rp.PASS and "17.5 -> 700 GFLOPs/img" in batched.evidence
    one_res = claim("vit_flops_grow_faster", ok("vit_b16", 224, flops=1e9), ok("convnext_b", 224, flops=1e9),
                    ok("convnext_b", 512, flops=None))
    assert one_res.verdict == rp.NOT_MEASURED and ">= 2 common resolutions" in one_res.evidence


def test_claims_not_measured_on_tiny_smoke_models():
    run = make_run(ok("vit_t16", 64), ok("convnext_atto", 64), fp=CPU_FINGERPRINT)
    assert {c.verdict for c in rp.check_claims(run.results)} == {rp.NOT_MEASURED}


# ------------------------------------------------------------------------------------------------ report files


def png_size(path: Path) -> tuple[int, int]:
    import matplotlib.image

    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC), f"{path.name} is not a PNG"
    height, width = matplotlib.image.imread(path).shape[:2]
    return width, height


def gpu_results():
    """ViT, ViTDet, ConvNeXt on a GPU at 224/1024 px, with an OOM, an error and a skipped setting."""
    out = []
    for model, times in (("vit_b16", (2, 40)), ("vitdet_b16", (2.2, 12)), ("convnext_b", (3, 25))):
        for res, ms in zip((224, 1024), times):
            out.append(ok(model, res, ms=ms, flops=res * 1e8, activation_peak_bytes=res * MIB,
                          peak_tflops_spec=989.4, peak_tflops_matmul=700.0))
    out.append(failed("vit_b16", 1024, batch=8, status="oom", reason="CUDA out of memory | tried 2 GiB\nmore"))
    out.append(failed("convnext_b", 1024, batch=8, status="error", reason="compiled output is not finite"))
    out.append(failed("vitdet_b16", 1024, batch=8, status="skipped", reason="not in profile"))
    out.append(ok("vitdet_b16", 224, batch=8, ms=9))
    return out


def smoke_results():
    """What the CPU smoke profile produces: tiny twins, 64/128 px, batch 1/2, no activation memory."""
    return [result(setting(m, res, b, compile_mode=mode), samples=[0.002 * b * res / 64] * 5, peak_tflops_matmul=0.2)
            for m in ("vit_t16", "vitdet_t16", "convnext_atto", "nfnet_tiny") for res in (64, 128) for b in (1, 2)
            for mode in ("eager", "default")]


@pytest.fixture(scope="module")
def two_device_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    gpu = make_run(*gpu_results(), fp=GPU_FINGERPRINT, path="gpu.json")
    cpu = make_run(*smoke_results(), fp=CPU_FINGERPRINT, path="cpu.json", profile="smoke")
    return rp.write_report([gpu, cpu], out), gpu, cpu


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


def test_unmeasured_metric_is_said_not_silent(two_device_report):
    path, gpu, cpu = two_device_report
    text = path.read_text()
    assert f"activation_memory_{cpu.slug}_bs1.png) (not measured on this device)" in text
    assert f"activation_memory_{gpu.slug}_bs1.png) (not" not in text


def test_same_device_runs_merge_later_wins(tmp_path):
    first = make_run(ok("vit_b16", 224, ms=10), ok("convnext_b", 224, ms=5), path="a.json")
    second = make_run(ok("vit_b16", 224, ms=2), path="b.json")
    [device] = rp.group_runs([first, second])
    sid = setting("vit_b16", 224, 1, "bf16", sdpa="flash", compile_mode="default").id
    assert device.results[sid].median_s == pytest.approx(0.002)
    assert len(device.results) == 2 and device.paths == ["a.json", "b.json"]
    rp.write_report([first, second], tmp_path)
    assert len(list(tmp_path.glob("throughput_*_bs1.png"))) == 1


def test_report_without_runs_is_still_markdown():
    assert "No runs given" in rp.report_markdown([])


def test_report_without_matplotlib_says_so(tmp_path, monkeypatch):
    def no_matplotlib(runs, out_dir):
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(rp, "make_figures", no_matplotlib)
    text = rp.write_report([make_run(ok("vit_b16", 224))], tmp_path).read_text()
    assert "Figures not written: matplotlib is not available" in text


# --------------------------------------------------------------------------------------------------------- CLI


def cli(argv: list[str]) -> int:
    """Run `report` through a parser built like vitcnn.__main__'s, independent of the other subcommands."""
    parser = argparse.ArgumentParser()
    rp.add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_cli_writes_report_and_appends_summary(tmp_path):
    gpu = write_json(tmp_path / "gpu.json", run_json(gpu_results(), GPU_FINGERPRINT))
    summary = tmp_path / "summary.md"
    summary.write_text("previous step\n")
    assert cli(["report", str(gpu), "--out", str(tmp_path / "out"), "--summary", str(summary)]) == 0
    report_text = (tmp_path / "out" / "report.md").read_text()
    assert summary.read_text() == "previous step\n" + report_text
    assert list((tmp_path / "out").glob("*.png"))


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"benchmarks": []}),
                                     json.dumps({"benchmarks": [], "machine_info": {}})])
def test_cli_invalid_run_file_exits_2_naming_it(tmp_path, capsys, content):
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    good = write_json(tmp_path / "good.json", run_json([ok("vit_b16", 224)]))
    assert cli(["report", str(good), str(bad), "--out", str(tmp_path / "out")]) == 2
    assert str(bad) in capsys.readouterr().err
    assert not (tmp_path / "out" / "report.md").exists()


def test_main_dispatches_report(tmp_path):
    main = pytest.importorskip("vitcnn.__main__").main
    run = write_json(tmp_path / "run.json", run_json([ok("vit_b16", 224)]))
    assert main(["report", str(run), "--out", str(tmp_path / "out")]) == 0
    assert main(["report", str(tmp_path / "missing.json"), "--out", str(tmp_path / "out")]) == 2


def test_report_of_a_real_cpu_smoke_run(smoke_run, tmp_path):
    """The whole pipeline on real measurements: every setting listed, figures are real PNGs of a sensible size."""
    from PIL import Image

    from vitcnn.runfile import load_run

    run = load_run(smoke_run.json_path)
    path = rp.write_report([run], tmp_path)
    text = path.read_text()
    for setting_id in run.results:
        assert setting_id in text
    assert "CPU measurement" in text and "NOT MEASURED" in text
    pngs = sorted(tmp_path.glob("*.png"))
    assert {p.name.split("_cpu-")[0] for p in pngs} == {"throughput", "latency", "activation_memory", "flops", "mfu"}
    assert len(pngs) == 5 * 2  # five metrics x batch sizes 1 and 2
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(png) as image:
            assert image.size[0] >= 600 and image.size[1] >= 400
