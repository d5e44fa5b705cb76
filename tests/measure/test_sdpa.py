"""The SDPA kernel that ran is the one requested: cache isolation, an honest probe, and a loud mismatch."""

from __future__ import annotations

import contextlib
import json
import re

import pytest
import torch

from tests.factories import setting
from tests.pytest_runs import run_benchmarks
from vitcnn.measure import pipeline, sdpa
from vitcnn.measure.pipeline import MeasureOptions

QUICK = MeasureOptions(target_seconds=0.02, min_rounds=2, max_rounds=5, warmup_calls=1, warmup_seconds=0.0)


def test_probe_names_fused_ops_matmuls_or_unknown():
    assert sdpa.backends_in(["aten::_scaled_dot_product_flash_attention_for_cpu", "aten::addmm"]) == "flash_cpu"
    assert sdpa.backends_in(["aten::_scaled_dot_product_cudnn_attention", "aten::_scaled_dot_product_attention_math"]
                            ) == "cudnn+math"
    assert sdpa.backends_in(["aten::bmm", "aten::addmm"]) == "math"  # attention decomposed into matmuls
    assert sdpa.backends_in(["aten::addmm", "cudaGraphLaunch"]) == "unknown"  # nothing seen: never a silent math
    assert sdpa.backends_in([]) == "unknown"


def test_mismatch_names_both_backends():
    sdpa.check_backend("auto", "unknown")
    sdpa.check_backend("flash", "flash_cpu")
    sdpa.check_backend("math", "math")
    for requested, observed in [("math", "flash_cpu"), ("cudnn", "flash"), ("math", "unknown"), ("flash", "flash+math")]:
        with pytest.raises(sdpa.BackendMismatch, match=re.escape(f"requested SDPA backend '{requested}', but '{observed}' ran")):
            sdpa.check_backend(requested, observed)


def test_probe_records_cpu_activities_only(monkeypatch):
    import torch.profiler

    seen = {}
    real = torch.profiler.profile

    def spy(*args, activities=None, **kwargs):
        seen["activities"] = activities
        return real(*args, activities=activities, **kwargs)

    monkeypatch.setattr(torch.profiler, "profile", spy)
    q = torch.randn(1, 2, 8, 16)
    assert sdpa.backends_seen(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q)) == "flash_cpu"
    assert seen["activities"] == [torch.profiler.ProfilerActivity.CPU]


def test_forced_backends_get_their_own_cache_key_or_no_cache():
    tag_before = torch.compiler.config.cache_key_tag
    with sdpa.isolated_compile_cache("auto") as how:
        assert how == "shared" and torch.compiler.config.cache_key_tag == tag_before
    with sdpa.isolated_compile_cache("math", use_tag=True) as how:
        assert how == "tagged" and "sdpa=math" in torch.compiler.config.cache_key_tag
    with sdpa.isolated_compile_cache("math", use_tag=False) as how:
        assert how == "off"
        assert not torch._inductor.config.fx_graph_cache and not torch._functorch.config.enable_autograd_cache
    assert torch.compiler.config.cache_key_tag == tag_before


@contextlib.contextmanager
def _shared_cache(backend, use_tag=None):
    yield "shared"


def test_shared_caches_would_run_the_wrong_kernel_and_the_check_catches_it(monkeypatch, tmp_path):
    """The trap of issue 10: `math` loads `auto`'s artifact from the on-disk caches. Without isolation the
    setting now fails naming both kernels; with isolation (either order) each setting runs its own kernel."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "shared"))
    monkeypatch.setattr(sdpa, "isolated_compile_cache", _shared_cache)
    auto, math_ = (setting("vit_t16", 64, sdpa=b, compile_mode="default") for b in ("auto", "math"))
    assert pipeline.measure(auto, "cpu", options=QUICK).info["sdpa_backend_used"] == "flash_cpu"
    wrong = pipeline.measure(math_, "cpu", options=QUICK)
    assert wrong.status == "error" and "requested SDPA backend 'math', but 'flash_cpu' ran" in wrong.reason

    monkeypatch.undo()
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "isolated"))
    first, second = pipeline.measure(math_, "cpu", options=QUICK), pipeline.measure(auto, "cpu", options=QUICK)
    assert first.status == second.status == "ok", (first.reason, second.reason)
    assert first.info["sdpa_backend_used"] == "math" and second.info["sdpa_backend_used"] == "flash_cpu"
    assert first.info["compile_cache_isolation"] in ("tagged", "off")


def test_the_issue_command_in_a_fresh_cache_reports_math_for_math(tmp_path):
    out = tmp_path / "run.json"
    done = run_benchmarks("--vitcnn-models", "vit_t16", "--vitcnn-res", "64", "--vitcnn-batch", "1",
                          "--vitcnn-sdpa", "auto,math", "--vitcnn-compile", "default", f"--benchmark-json={out}",
                          "--vitcnn-target-seconds", "0.05", "--vitcnn-warmup-seconds", "0.1",
                          env={"TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    used = {b["extra_info"]["setting_id"]: b["extra_info"]["sdpa_backend_used"] for b in json.loads(out.read_text())["benchmarks"]}
    assert used == {"vit_t16-64px-bs1-fp32-auto-default": "flash_cpu", "vit_t16-64px-bs1-fp32-math-default": "math"}
