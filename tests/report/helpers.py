"""Results for report tests: ok and failed settings of the blog models on a GPU, and a CPU smoke-like run."""

from __future__ import annotations

from pathlib import Path

from tests.factories import GPU_FINGERPRINT, make_run as _make_run, result, setting
from vitcnn.report import claims as cl
from vitcnn.table import MIB

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_run(*results, fp=None, path="<memory>", profile="blog-lite"):
    return _make_run(*results, fp=fp, path=path, profile=profile)


def ok(model, res, batch=1, ms=10.0, precision="bf16", **extra):
    """An ok result of `model` whose every sample takes `ms` milliseconds per call."""
    sdpa = "flash" if model.startswith("vit") else None
    layout = "nchw" if model.startswith("vit") else "channels_last"
    s = setting(model, res, batch, precision, sdpa=sdpa, compile_mode="default", layout=layout)
    return result(s, samples=[ms / 1e3] * 5, **extra)


def failed(model, res, batch=1, status="oom", reason="CUDA out of memory", precision="bf16"):
    s = setting(model, res, batch, precision, compile_mode="default")
    return result(s, status=status, reason=reason)


def claims_of(*results) -> dict[str, cl.Claim]:
    return {c.key: c for c in cl.check_claims(make_run(*results, fp=GPU_FINGERPRINT).results)}


def claim(key, *results) -> cl.Claim:
    return claims_of(*results)[key]


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
