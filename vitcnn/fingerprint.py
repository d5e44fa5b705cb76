"""What machine and software a result belongs to, and which of those fields make two runs comparable.

Timings from different GPUs, drivers or library versions are not comparable; the gate refuses to compare runs
whose identity fields differ. The slug names the baseline file for one identity.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import re
import subprocess

import torch

GPU_IDENTITY = ("device", "gpu_name", "gpu_sm_count", "gpu_memory_bytes", "driver", "cuda", "cudnn", "torch",
                "triton", "timm")
CPU_IDENTITY = ("device", "cpu_model", "cpu_count", "torch", "timm")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _driver_version() -> str | None:
    """NVIDIA driver version via NVML (nvidia-ml-py), falling back to nvidia-smi."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
            return version.decode() if isinstance(version, bytes) else version
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        pass
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True)
        return out.stdout.strip().splitlines()[0]
    except Exception:
        return None


def collect(device: torch.device | str | None = None) -> dict:
    """The fingerprint of this machine for benchmarks on `device` (CUDA if available, else CPU)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    fp: dict = {
        "device": device.type,
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": _version("triton"),
        "timm": _version("timm"),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        fp.update(
            gpu_name=props.name,
            gpu_sm_count=props.multi_processor_count,
            gpu_memory_bytes=props.total_memory,
            gpu_capability=f"{props.major}.{props.minor}",
            driver=_driver_version(),
        )
    return fp


def identity(fp: dict) -> dict:
    """The fields that must match for two runs to be compared."""
    keys = GPU_IDENTITY if fp.get("device") == "cuda" else CPU_IDENTITY
    return {k: fp.get(k) for k in keys}


def differences(a: dict, b: dict) -> dict[str, tuple]:
    """Identity fields whose values differ between fingerprints a and b: {field: (a_value, b_value)}."""
    ia, ib = identity(a), identity(b)
    return {k: (ia.get(k), ib.get(k)) for k in sorted(set(ia) | set(ib)) if ia.get(k) != ib.get(k)}


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")


def slug(fp: dict) -> str:
    """Stable, readable file stem for a fingerprint's identity, e.g. nvidia-h100-80gb-hbm3-torch2.11.0-1a2b3c4d."""
    ident = identity(fp)
    digest = hashlib.sha256(repr(sorted(ident.items())).encode()).hexdigest()[:8]
    if fp.get("device") == "cuda":
        head = _slugify(str(fp.get("gpu_name")))
    else:
        head = f"cpu-{_slugify(str(fp.get('cpu_model')))[:40].strip('-')}-{fp.get('cpu_count')}c"
    torch_version = _slugify(str(fp.get("torch")).split("+")[0])
    return f"{head}-torch{torch_version}-{digest}"
