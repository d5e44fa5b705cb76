"""Build vitcnn run JSON (the schema of vitcnn/runfile.py) from a few numbers, for unit tests of gate and report."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np

from vitcnn.settings import Setting

LEGACY_CPU_FINGERPRINT = {
    "device": "cpu", "cpu_model": "Test CPU", "cpu_count": 2, "torch_threads": 2, "python": "3.11.7",
    "torch": "2.15.0", "triton": None, "timm": "1.0.31", "cuda": None, "cudnn": None,
}
LEGACY_GPU_FINGERPRINT = {
    "device": "cuda", "cpu_model": "Test CPU", "cpu_count": 16, "torch_threads": 16, "python": "3.12.3",
    "torch": "2.11.0", "triton": "3.6.0", "timm": "1.0.31", "cuda": "13.0", "cudnn": 91300,
    "gpu_name": "NVIDIA H100 80GB HBM3", "gpu_sm_count": 132, "gpu_memory_bytes": 85_000_000_000,
    "gpu_capability": "9.0", "driver": "580.159.03",
}
_TEST_CPU = {"cpu_vendor": "GenuineIntel", "cpu_family": 6, "cpu_model_number": 143, "cpu_stepping": 8,
             "cpu_capability": "AVX512", "cpu_features": ["avx", "avx2", "fma", "avx512f", "avx512_bf16"]}
CPU_FINGERPRINT = {"identity_version": 2, **LEGACY_CPU_FINGERPRINT, **_TEST_CPU}
GPU_FINGERPRINT = {
    "identity_version": 3, **LEGACY_GPU_FINGERPRINT, **_TEST_CPU, "gpu_board": "692-2G520-0200-000",
    "gpu_mig": "off", "gpu_ecc": "on", "gpu_max_clocks_mhz": {"sm": 1980, "mem": 2619},
    "gpu_default_power_limit_w": 700, "gpu_power_limit_w": 700,
    "gpu_application_clocks_mhz": {"sm": 1755, "mem": 2619}, "gpu_persistence": "on", "gpu_nvml_error": None,
}

RESULTS_CPU_RUN = Path(__file__).resolve().parents[1] / "results" / "cpu" / "2026-11-22" / "shard-1.json"


def amx_machine() -> dict:
    """The complete fingerprint of the machine results/cpu was measured on (2-core Xeon, model 167, AMX): the
    committed run's vitcnn fingerprint completed from the CPU record pytest-benchmark wrote beside it (vendor,
    family, model, stepping, flags). torch's dispatch level was not recorded; AVX512 is what torch reports on
    this machine (checked with torch.backends.cpu.get_cpu_capability() on the VM)."""
    from vitcnn import cpu_isa

    machine = json.loads(RESULTS_CPU_RUN.read_text())["machine_info"]
    return {**machine["vitcnn_fingerprint"], "identity_version": 2,
            **cpu_isa.from_pytest_benchmark(machine["cpu"]), "cpu_capability": "AVX512"}


def non_amx_machine() -> dict:
    """The machine of issue 18's rerun, built from amx_machine() by changing what the issue reports about it:
    the same model string and core count, CPU model 207, avx512_bf16 but no AMX (no amx_* flags)."""
    amx = amx_machine()
    features = [f for f in amx["cpu_features"] if not f.startswith("amx_")]
    return {**amx, "cpu_model_number": 207, "cpu_features": features}


def setting(model="vit_t16", resolution=64, batch=1, precision="fp32", sdpa=None, compile_mode="eager",
            layout="nchw", task="infer") -> Setting:
    from vitcnn.zoo import models

    if sdpa is None:
        sdpa = "auto" if models.spec(model).has_attention else "none"
    return Setting(model, resolution, batch, precision, sdpa, compile_mode, layout, task)


def result(s: Setting, samples=None, status="ok", reason=None, **extra) -> dict:
    """One setting's entry: a (benchmark, status) pair; `samples` in seconds. extra overrides extra_info keys."""
    entry = {"setting": s.as_dict(), "id": s.id, "status": status, "reason": reason}
    if status != "ok":
        return {"status_entry": entry, "benchmark": None}
    samples = list(samples if samples is not None else [0.01] * 20)
    median = statistics.median(samples)
    q = statistics.quantiles(samples, n=4) if len(samples) > 1 else [median, median, median]
    info = {
        "setting": s.as_dict(), "setting_id": s.id, "status": "ok", "model_family": s.family,
        "device": "cpu", "params": 5_000_000, "flops": 1_000_000_000, "attention_flops": None,
        "flops_error": None, "compile_time_s": None, "compile_cache": "n/a", "check_max_rel_err": 0.0,
        "check_tolerance": 1e-3, "images_per_s": s.batch / median, "tflops_per_s": 1e9 / median / 1e12,
        "peak_tflops_spec": None, "mfu_spec": None, "peak_tflops_matmul": None, "mfu_matmul": None,
        "weights_bytes": 20_000_000, "activation_peak_bytes": None, "reserved_peak_bytes": None,
        "sdpa_backend_used": "math" if s.sdpa != "none" else "none", "precision_flags": {},
    }
    info.update(extra)
    bench = {
        "group": None, "name": f"test_inference[{s.id}]", "fullname": f"benchmarks/test_inference.py::test_inference[{s.id}]",
        "params": {"vitcnn_setting": s.id}, "param": s.id, "extra_info": info, "options": {},
        "stats": {"min": min(samples), "max": max(samples), "mean": statistics.fmean(samples),
                  "median": median, "q1": q[0], "q3": q[2], "iqr": q[2] - q[0], "rounds": len(samples),
                  "iterations": 1, "data": samples},
    }
    return {"status_entry": entry, "benchmark": bench}


def run_json(results: list[dict], fingerprint: dict | None = None, profile: str = "smoke") -> dict:
    """A whole run file's JSON from `result(...)` entries."""
    from vitcnn import fingerprint as fpmod

    fp = dict(fingerprint or CPU_FINGERPRINT)
    return {
        "machine_info": {"node": "test", "vitcnn_fingerprint": fp, "vitcnn_slug": fpmod.slug(fp)},
        "commit_info": {},
        "benchmarks": [r["benchmark"] for r in results if r["benchmark"] is not None],
        "datetime": "2026-11-21T00:00:00", "version": "5.3.1",
        "vitcnn": {"schema": 1, "profile": profile, "settings": [r["status_entry"] for r in results]},
    }


def make_run(*results, fp=None, path="<memory>", profile="smoke"):
    """A parsed Run of `result(...)` entries."""
    from vitcnn.runfile import parse_run

    return parse_run(run_json(list(results), fp, profile), path)


def stored(run, saves: int = 2):
    """`run` as a baseline saved `saves` times (identical saves agree within their intervals, so speed is judged
    from the samples: vitcnn/gate/stored.py)."""
    from vitcnn.gate.stored import record
    from vitcnn.runfile import parse_run

    data = json.loads(json.dumps(run.raw))
    data["vitcnn"]["saved_runs"] = [record(run)] * saves
    return parse_run(data, run.path)


def write_run(path: Path, *results, fp=None) -> Path:
    path.write_text(json.dumps(run_json(list(results), fp)))
    return path


def low_noise(median: float, n: int = 30, seed: int = 0) -> list[float]:
    """n timings around `median` with 0.5% noise."""
    rng = np.random.default_rng(seed)
    return [float(x) for x in median * (1 + rng.normal(0, 0.005, n))]


S1 = setting()
S2 = setting(resolution=128)
S3 = setting(model="convnext_atto")
S4 = setting(batch=2)
