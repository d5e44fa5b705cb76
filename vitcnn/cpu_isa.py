"""Which CPU a measurement ran on, as far as its kernels can tell: vendor, family/model/stepping, and the
instruction-set features that decide which kernels oneDNN, inductor and torch's own dispatch pick.

Why: one model string ("Intel(R) Xeon(R) Processor") names CPUs with and without AMX, and a bf16 ViT-B/16 call at
1024 px took 1.58 s on one and 9.12 s on the other. The model string cannot tell them apart; the flags can.
Only features that choose a kernel are kept, so a microcode or security flag never splits a baseline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

CPUINFO = "/proc/cpuinfo"

# Features that select a different matmul/conv/attention kernel (oneDNN, inductor's C++ vectorizer, ATen's
# dispatch levels), x86 first, then Arm. Spelled as /proc/cpuinfo spells them (py-cpuinfo keeps those names).
KERNEL_FEATURES = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512dq", "avx512vl",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16",
    "asimd", "asimdhp", "asimddp", "bf16", "i8mm", "sve", "sve2", "sme",
)

# The highest tier present names the machine in slugs and tables: (feature, label), best first.
TIERS = (("amx_tile", "amx"), ("avx512f", "avx512"), ("avx2", "avx2"), ("sve", "sve"), ("asimd", "neon"))

# /proc/cpuinfo keys per field: x86 names first, then Arm's.
_KEYS = {
    "cpu_vendor": ("vendor_id", "CPU implementer"),
    "cpu_family": ("cpu family", "CPU architecture"),
    "cpu_model_number": ("model", "CPU part"),
    "cpu_stepping": ("stepping", "CPU revision"),
}


def read_cpuinfo(path: str = CPUINFO) -> dict[str, str]:
    """The first processor's `key: value` lines of /proc/cpuinfo (every core of one machine is the same model);
    empty where the file does not exist (macOS, Windows)."""
    fields: dict[str, str] = {}
    try:
        with open(path) as f:
            for line in f:
                if not line.strip():
                    if fields:
                        break
                    continue
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def kernel_features(flags: Iterable[str]) -> list[str]:
    """The kernel-selecting features among `flags`, in KERNEL_FEATURES order."""
    present = set(flags)
    return [feature for feature in KERNEL_FEATURES if feature in present]


def _number(text: str | None) -> int | str | None:
    """A cpuinfo number as an int (Arm writes hex: 0x41), else the text as it is."""
    if text is None or text == "":
        return None
    try:
        return int(text, 0)
    except ValueError:
        return text


def describe(cpuinfo: Mapping[str, str]) -> dict:
    """Fingerprint fields of a /proc/cpuinfo record: vendor, family, model number, stepping and features."""
    fields: dict = {}
    for name, keys in _KEYS.items():
        value = next((cpuinfo[k] for k in keys if k in cpuinfo), None)
        fields[name] = value if name == "cpu_vendor" else _number(value)
    flags = (cpuinfo.get("flags") or cpuinfo.get("Features") or "").split()
    fields["cpu_features"] = kernel_features(flags)
    return fields


def from_pytest_benchmark(cpu: Mapping) -> dict:
    """The same fields from pytest-benchmark's `machine_info["cpu"]` (py-cpuinfo), which older run files have even
    when their vitcnn fingerprint does not: enough to show which machine they came from, not to identify it."""
    return {
        "cpu_vendor": cpu.get("vendor_id_raw"),
        "cpu_family": cpu.get("family"),
        "cpu_model_number": cpu.get("model"),
        "cpu_stepping": cpu.get("stepping"),
        "cpu_features": kernel_features(cpu.get("flags") or []),
    }


def tier(features: Iterable[str] | None) -> str | None:
    """The best kernel tier the features allow ("amx", "avx512", "avx2", "sve", "neon"), None when unknown."""
    if features is None:
        return None
    present = set(features)
    return next((label for feature, label in TIERS if feature in present), "base")


TIER_LABELS = {"amx": "with AMX", "avx512": "AVX-512, no AMX", "avx2": "AVX2, no AVX-512", "sve": "SVE",
               "neon": "NEON", "base": "no AVX2 or NEON"}


def tier_label(features: Iterable[str] | None) -> str | None:
    """The tier in words for tables and figure titles ("with AMX", "AVX-512, no AMX", ...), None when unknown."""
    level = tier(features)
    return None if level is None else TIER_LABELS[level]


def torch_capability() -> str | None:
    """The ISA level ATen dispatches its vectorised CPU kernels to (e.g. "AVX512", "AVX2", "DEFAULT")."""
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return None


def collect() -> dict:
    """This machine's CPU fields: describe(/proc/cpuinfo) plus torch's dispatch level."""
    return {**describe(read_cpuinfo()), "cpu_capability": torch_capability()}
