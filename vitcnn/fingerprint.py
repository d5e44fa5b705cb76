"""What machine and software a result belongs to, and which of those fields make two runs comparable.

Timings from different CPUs, GPUs, drivers or library versions are not comparable; the gate refuses to compare
runs whose identity fields differ, and the slug that names a baseline file changes with every identity field.

- CPU identity follows the kernels, not the model string: vendor, family/model/stepping, the ISA level ATen
  dispatches to, the kernel-selecting features (AMX, AVX-512 BF16/FP16/VNNI, AVX2, ...; vitcnn/cpu_isa.py), the
  core count and torch's thread count (a 1-thread and a 2-thread run are two machines as far as time goes).
- GPU identity adds, from NVML (vitcnn/nvml.py), what fixes the board's speed ceiling and stays put between jobs:
  board part number (the SKU, SXM or PCIe), MIG mode or slice, ECC mode, maximum clocks and the board's default
  power limit. A different slice, board or ECC mode is a different device, so those refuse.
- GPU *conditions* are settings an operator changes between jobs on the same board: the enforced power limit,
  application clocks and persistence mode. They are recorded and shown, and the gate warns when they differ
  instead of refusing, so a capped run is compared and the reader is told why it may be slower.

- Run *conditions* of every device: the malloc policy the process ran under (vitcnn/measure/allocator.py), which
  moves CPU timings by 10-30% on a 2-core VM; recorded and warned about like the GPU's.
- A GPU's identity includes its host CPU (model, vendor, family/model numbers, ISA level and kernel features, since
  identity version 3): launch-bound settings run at the host's speed.

Fingerprints written before identity version 2 hold only the first fields (model string, core count, versions;
GPU name, SMs, memory, driver, versions); GPU fingerprints of version 2 lack the host. They still load and keep
their old slug; their identity is *incomplete*, and the gate refuses speed verdicts against them unless
cross-machine comparison is allowed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import re
import subprocess
from typing import TYPE_CHECKING

from vitcnn import cpu_isa, nvml
from vitcnn.measure import allocator

if TYPE_CHECKING:
    import torch

IDENTITY_VERSION = 3  # fingerprint["identity_version"]; absent in fingerprints of the first format

LEGACY_GPU_IDENTITY = ("device", "gpu_name", "gpu_sm_count", "gpu_memory_bytes", "driver", "cuda", "cudnn",
                       "torch", "triton", "timm")
LEGACY_CPU_IDENTITY = ("device", "cpu_model", "cpu_count", "torch", "timm")
V2_GPU_IDENTITY = LEGACY_GPU_IDENTITY + ("gpu_board", "gpu_mig", "gpu_ecc", "gpu_max_clocks_mhz",
                                         "gpu_default_power_limit_w")
# The host of a GPU (identity version 3): launch-bound settings (small batches, eager, ViTDet's window partition)
# run at the speed of the CPU that issues the kernels, so another host CPU is another machine.
HOST_IDENTITY = ("cpu_model", "cpu_vendor", "cpu_family", "cpu_model_number", "cpu_capability", "cpu_features")
GPU_IDENTITY = V2_GPU_IDENTITY + HOST_IDENTITY
CPU_IDENTITY = LEGACY_CPU_IDENTITY + ("cpu_vendor", "cpu_family", "cpu_model_number", "cpu_stepping",
                                      "cpu_capability", "cpu_features", "torch_threads")
GPU_CONDITIONS = ("gpu_power_limit_w", "gpu_application_clocks_mhz", "gpu_persistence")
RUN_CONDITIONS = ("malloc",)  # any device; absent in fingerprints from before it was recorded
ADDED_IN_V2 = frozenset(V2_GPU_IDENTITY + CPU_IDENTITY) - frozenset(LEGACY_GPU_IDENTITY + LEGACY_CPU_IDENTITY)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    return cpu_isa.read_cpuinfo().get("model name") or platform.processor() or platform.machine() or "unknown"


def _smi_driver_version() -> str | None:
    """The driver version from nvidia-smi, for machines without nvidia-ml-py."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True)
        return out.stdout.strip().splitlines()[0]
    except Exception:
        return None


def gpu_fields(props, answers: dict) -> dict:
    """Fingerprint fields of a CUDA device from torch's device properties and NVML's answers (nvml.device_info)."""
    return {
        "gpu_name": props.name,
        "gpu_sm_count": props.multi_processor_count,
        "gpu_memory_bytes": props.total_memory,
        "gpu_capability": f"{props.major}.{props.minor}",
        "driver": answers.get("driver") or _smi_driver_version(),
        "gpu_board": answers.get("board"),
        "gpu_mig": answers.get("mig"),
        "gpu_ecc": answers.get("ecc"),
        "gpu_max_clocks_mhz": answers.get("max_clocks_mhz"),
        "gpu_default_power_limit_w": answers.get("default_power_limit_w"),
        "gpu_power_limit_w": answers.get("power_limit_w"),
        "gpu_application_clocks_mhz": answers.get("application_clocks_mhz"),
        "gpu_persistence": answers.get("persistence"),
        "gpu_nvml_error": answers.get("error"),
    }


def pci_bus_id(props) -> str | None:
    """NVML's spelling of the device's PCI address, when this torch exposes it."""
    try:
        return f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
    except AttributeError:
        return None


def collect(device: torch.device | str | None = None) -> dict:
    """The fingerprint of this machine for benchmarks on `device` (CUDA if available, else CPU). The only part of
    this module that needs torch: reading fingerprints (slugs, identity, differences) does not import it."""
    import torch

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    fp: dict = {
        "identity_version": IDENTITY_VERSION,
        "device": device.type,
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        **cpu_isa.collect(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": _version("triton"),
        "timm": _version("timm"),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "malloc": allocator.condition(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        uuid = getattr(props, "uuid", None)
        fp.update(gpu_fields(props, nvml.device_info(str(uuid) if uuid else None, pci_bus_id(props))))
    return fp


def machine_fields(device: torch.device | str | None = None) -> dict:
    """What vitcnn adds to pytest-benchmark's machine_info: the fingerprint and its slug."""
    fp = collect(device)
    return {"vitcnn_fingerprint": fp, "vitcnn_slug": slug(fp)}


def version(fp: dict) -> int:
    """The identity version `fp` was recorded with (1: the first format, without the field)."""
    return int(fp.get("identity_version") or 1)


def records_cpu_isa(fp: dict) -> bool:
    """Whether `fp` records the CPU's vendor, model numbers and kernel features (identity version 2 or later)."""
    return version(fp) >= 2


def _is_gpu(fp: dict) -> bool:
    return fp.get("device") == "cuda"


def identity_fields(fp: dict) -> tuple[str, ...]:
    """The identity fields `fp` records: the full set, or an older version's for an older fingerprint."""
    if _is_gpu(fp):
        return GPU_IDENTITY if version(fp) >= 3 else V2_GPU_IDENTITY if version(fp) == 2 else LEGACY_GPU_IDENTITY
    return CPU_IDENTITY if version(fp) >= 2 else LEGACY_CPU_IDENTITY


def is_complete(fp: dict) -> bool:
    """Whether `fp` records the whole identity of its kind of device (a GPU's host since version 3)."""
    return not missing_identity(fp)


def identity(fp: dict) -> dict:
    """The fields that must match for two runs to be compared."""
    return {k: fp.get(k) for k in identity_fields(fp)}


def missing_identity(fp: dict) -> tuple[str, ...]:
    """Identity fields an older fingerprint does not record (empty for a complete one)."""
    full = GPU_IDENTITY if _is_gpu(fp) else CPU_IDENTITY
    recorded = set(identity_fields(fp))
    return tuple(k for k in full if k not in recorded)


def differences(a: dict, b: dict) -> dict[str, tuple]:
    """Identity fields whose values differ between fingerprints a and b: {field: (a_value, b_value)}. Fields only
    one of them can record (an older fingerprint's missing ones) are not differences: see missing_identity."""
    ia, ib = identity(a), identity(b)
    keys = set(ia) | set(ib) if is_complete(a) and is_complete(b) else set(ia) & set(ib)
    return {k: (ia.get(k), ib.get(k)) for k in sorted(keys) if ia.get(k) != ib.get(k)}


def condition_fields(fp: dict) -> tuple[str, ...]:
    """The condition fields a fingerprint of this device can record: the run's, and a GPU's own."""
    return RUN_CONDITIONS + GPU_CONDITIONS if _is_gpu(fp) else RUN_CONDITIONS


def conditions(fp: dict) -> dict:
    """The run and GPU conditions recorded in `fp` (empty for an older fingerprint)."""
    return {k: fp[k] for k in condition_fields(fp) if k in fp and fp[k] is not None}


def condition_changes(a: dict, b: dict) -> dict[str, tuple]:
    """Conditions recorded by both fingerprints whose values differ: {field: (a_value, b_value)}."""
    ca, cb = conditions(a), conditions(b)
    return {k: (ca[k], cb[k]) for k in ca if k in cb and ca[k] != cb[k]}


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")


def slug(fp: dict) -> str:
    """Stable, readable file stem for a fingerprint's identity, e.g. cpu-intel-r-xeon-r-processor-amx-2c-torch2.14.1-
    1a2b3c4d. The hash covers every identity field; the readable part names the model (and, for a complete
    fingerprint, a CPU's best kernel tier or a GPU's MIG slice). An older fingerprint keeps the slug it had."""
    ident = identity(fp)
    digest = hashlib.sha256(repr(sorted(ident.items())).encode()).hexdigest()[:8]
    complete = version(fp) >= 2  # the readable part as identity version 2 wrote it
    if _is_gpu(fp):
        head = _slugify(str(fp.get("gpu_name")))
        mig = fp.get("gpu_mig") if complete else None
        if mig and mig not in ("on", "off"):
            head += "-mig-" + _slugify(str(mig).rsplit("MIG", 1)[-1])
    else:
        head = f"cpu-{_slugify(str(fp.get('cpu_model')))[:40].strip('-')}"
        tier = cpu_isa.tier(fp.get("cpu_features")) if complete else None
        head += f"-{tier}" if tier else ""
        head += f"-{fp.get('cpu_count')}c"
    torch_version = _slugify(str(fp.get("torch")).split("+")[0])
    return f"{head}-torch{torch_version}-{digest}"


def legacy_slug(fp: dict) -> str:
    """The slug an older vitcnn gave this machine (first-format identity): where its baseline may still be."""
    return slug({k: v for k, v in fp.items() if k not in ADDED_IN_V2 and k != "identity_version"})


def older_slugs(fp: dict) -> list[str]:
    """The slugs older vitcnn versions gave this machine, newest first (a GPU's before its host joined the
    identity, then the first format's): where a baseline of this machine saved by them may be."""
    older = [slug({**fp, "identity_version": 2})] if _is_gpu(fp) and version(fp) >= 3 else []
    return [s for s in (*older, legacy_slug(fp)) if s != slug(fp)]
