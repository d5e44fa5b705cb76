"""The claims check: PASS, FAIL and NOT MEASURED with the numbers behind them (vitcnn/report/claims.py)."""

from __future__ import annotations

from tests.factories import CPU_FINGERPRINT
from tests.report.helpers import claim, failed, make_run, ok
from vitcnn.report import claims as rp
from vitcnn.settings import Setting
from vitcnn.table import MIB


def test_realtime_claim():
    assert claim("vit_realtime_1024", ok("vit_b16", 1024, ms=5)).verdict == rp.PASS  # 200 img/s
    failing = claim("vit_realtime_1024", ok("vit_b16", 1024, ms=20))
    assert failing.verdict == rp.FAIL and "50.0 img/s" in failing.evidence
    absent = claim("vit_realtime_1024", ok("vit_b16", 1024, batch=8, ms=5))  # batch 1 missing
    assert absent.verdict == rp.NOT_MEASURED and "batch 1" in absent.evidence
    oom = claim("vit_realtime_1024", failed("vit_b16", 1024, status="oom"))
    assert oom.verdict == rp.NOT_MEASURED and "oom" in oom.evidence


def test_vitdet_vs_convnext_claim_uses_smallest_common_batch():
    passing = claim("vitdet_faster_than_convnext", ok("vitdet_b16", 1024, ms=5), ok("convnext_b", 1024, ms=8))
    assert passing.verdict == rp.PASS and passing.evidence.startswith("decided at 1024 px, batch 1:")
    failing = claim("vitdet_faster_than_convnext", ok("vitdet_b16", 1024, ms=9), ok("convnext_b", 1024, ms=8))
    assert failing.verdict == rp.FAIL
    # batch 1 only for one of them: compare at batch 8, and say so
    at8 = claim("vitdet_faster_than_convnext", ok("vitdet_b16", 1024, ms=5), ok("vitdet_b16", 1024, 8, ms=30),
                ok("convnext_b", 1024, 8, ms=40), failed("convnext_b", 1024, 1))
    assert at8.verdict == rp.PASS and at8.evidence.startswith("decided at 1024 px, batch 8:")
    missing = claim("vitdet_faster_than_convnext", ok("vitdet_b16", 1024, ms=5), ok("convnext_b", 512, ms=1))
    assert missing.verdict == rp.NOT_MEASURED and "convnext_b at 1024 px: no setting" in missing.evidence


def test_a_comparison_is_decided_at_the_largest_resolution_both_ran_and_says_so():
    # a CPU run that stops at 512 px: a real verdict, at 512 px
    cpu = claim("vitdet_faster_than_convnext", ok("vitdet_b16", 224, ms=50), ok("convnext_b", 224, ms=40),
                ok("vitdet_b16", 512, ms=200), ok("convnext_b", 512, ms=300))
    assert cpu.verdict == rp.PASS and cpu.evidence.startswith("decided at 512 px, batch 1:")
    # one model OOMs at 1024 px: decided below it, and the OOM is said
    below = claim("vitdet_faster_than_convnext", ok("vitdet_b16", 512, ms=9), ok("convnext_b", 512, ms=8),
                  ok("vitdet_b16", 1024, ms=30), failed("convnext_b", 1024))
    assert below.verdict == rp.FAIL
    assert below.evidence.startswith("decided at 512 px, batch 1 (vitdet_b16 at 1024 px: bs1 ok; "
                                     "convnext_b at 1024 px: bs1 oom)")


def test_memory_claim():
    def run(vit_bytes, cnn_bytes):
        return claim("vit_memory_le_convnext", ok("vit_b16", 1024, activation_peak_bytes=vit_bytes),
                     ok("convnext_b", 1024, activation_peak_bytes=cnn_bytes))

    assert run(100 * MIB, 200 * MIB).verdict == rp.PASS
    assert run(200 * MIB, 200 * MIB).verdict == rp.PASS  # "<=" holds with equality
    failing = run(300 * MIB, 200 * MIB)
    assert failing.verdict == rp.FAIL and "300.0 MiB" in failing.evidence and "200.0 MiB" in failing.evidence
    unmeasured = run(None, None)
    assert unmeasured.verdict == rp.NOT_MEASURED and "not measured" in unmeasured.evidence
    assert claim("vit_memory_le_convnext", ok("vit_b16", 1024)).verdict == rp.NOT_MEASURED


def test_vitdet_vs_vit_claim_lists_speedup_over_resolutions():
    results = [ok("vit_b16", 224, ms=2), ok("vitdet_b16", 224, ms=2.5), ok("vit_b16", 512, ms=6),
               ok("vitdet_b16", 512, ms=4), ok("vit_b16", 1024, ms=40), ok("vitdet_b16", 1024, ms=10)]
    passing = claim("vitdet_faster_than_vit", *results)
    assert passing.verdict == rp.PASS
    assert "224 px 0.8x, 512 px 1.5x, 1024 px 4x" in passing.evidence
    failing = claim("vitdet_faster_than_vit", ok("vit_b16", 1024, ms=10), ok("vitdet_b16", 1024, ms=12))
    assert failing.verdict == rp.FAIL
    partial = claim("vitdet_faster_than_vit", *results[:4], failed("vit_b16", 1024), ok("vitdet_b16", 1024))
    assert partial.verdict == rp.PASS and "decided at 512 px" in partial.evidence and "1024 px: bs1 oom" in partial.evidence
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


def test_a_flop_count_with_an_error_never_decides_the_flops_claim():
    undercount = claim("vit_flops_grow_faster", ok("vit_b16", 224, flops=17.5e9), ok("convnext_b", 224, flops=15e9),
                       ok("vit_b16", 1024, flops=30e9, flops_error="attention not counted"),
                       ok("convnext_b", 1024, flops=320e9))
    assert undercount.verdict == rp.NOT_MEASURED


def train(model, res, batch=1, ms=30.0, **extra):
    """An ok training step of `model` (task train) taking `ms` per step."""
    from dataclasses import replace as _replace

    from tests.factories import result

    base = ok(model, res, batch, ms=ms)
    s = _replace(Setting.from_dict(base["status_entry"]["setting"]), task="train")
    return result(s, samples=[ms / 1e3] * 5, **extra)


def training_claims(*results) -> dict[str, rp.Claim]:
    from vitcnn.report.analysis import analyse

    [analysis] = analyse([make_run(*results, fp=CPU_FINGERPRINT)])
    return {c.key: c for c in analysis.claims}


def test_training_factor_claim_gives_each_models_factor():
    results = [ok("vit_b16", 224, ms=10), train("vit_b16", 224, ms=31), ok("vit_b16", 384, ms=30),
               train("vit_b16", 384, ms=95), ok("convnext_b", 224, ms=12), train("convnext_b", 224, ms=40)]
    passing = training_claims(*results)["train_step_about_3x"]
    assert passing.verdict == rp.PASS
    assert "vit_b16 3.13x (224 px bs1 3.1x, 384 px bs1 3.17x)" in passing.evidence
    assert "convnext_b 3.33x (224 px bs1 3.33x)" in passing.evidence
    failing = training_claims(ok("vit_b16", 224, ms=10), train("vit_b16", 224, ms=80))["train_step_about_3x"]
    assert failing.verdict == rp.FAIL and "vit_b16 8x" in failing.evidence
    assert training_claims(ok("vit_b16", 224))["train_step_about_3x"].verdict == rp.NOT_MEASURED


def test_training_steps_never_compete_with_inference_for_best():
    claims = training_claims(ok("vitdet_b16", 224, ms=50), train("vitdet_b16", 224, ms=1),
                             ok("convnext_b", 224, ms=40))
    assert claims["vitdet_faster_than_convnext"].verdict == rp.FAIL  # the 1 ms step is not an inference


def test_training_memory_claim_uses_the_total_peak():
    def run(vit_total, cnn_total):
        return training_claims(train("vit_b16", 384, total_peak_bytes=vit_total),
                               train("convnext_b", 384, total_peak_bytes=cnn_total))["vit_train_memory_lt_convnext"]

    passing = run(900 * MIB, 1200 * MIB)
    assert passing.verdict == rp.PASS and passing.evidence.startswith("decided at 384 px, batch 1:")
    assert run(1200 * MIB, 1200 * MIB).verdict == rp.FAIL  # "less" is strict
    assert run(None, 1200 * MIB).verdict == rp.NOT_MEASURED


def test_a_launch_bound_verdict_gives_the_gpu_times_and_the_other_batches():
    """The H200 first contact (results/nvidia-h200-*): at 1024 px, batch 1, ViTDet's wall time was twice its GPU time."""
    decided = claim("vitdet_faster_than_vit",
                    ok("vitdet_b16", 1024, ms=4.74, gpu_busy=0.51, gpu_time_s=2.42e-3),
                    ok("vit_b16", 1024, ms=3.68, gpu_busy=0.93, gpu_time_s=3.43e-3),
                    ok("vitdet_b16", 1024, 32, ms=72.1, gpu_busy=0.92), ok("vit_b16", 1024, 32, ms=107, gpu_busy=0.95))
    assert decided.verdict == rp.FAIL and decided.evidence.startswith("decided at 1024 px, batch 1:")
    assert "launch-bound (gpu_busy vitdet_b16 0.51, vit_b16 0.93): GPU time alone vitdet_b16 2.42 ms vs vit_b16 3.43 ms" \
        in decided.evidence
    assert "vit_b16/vitdet_b16 latency at 1024 px, batch 32 1.48x" in decided.evidence
    busy = claim("vitdet_faster_than_vit", ok("vitdet_b16", 1024, ms=3, gpu_busy=0.9), ok("vit_b16", 1024, ms=4))
    assert "launch-bound" not in busy.evidence and "batch 32" not in busy.evidence  # CPU runs: no gpu_busy at all
