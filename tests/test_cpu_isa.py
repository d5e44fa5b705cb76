"""CPU identity from /proc/cpuinfo and py-cpuinfo records: the features that choose kernels, nothing else."""

from __future__ import annotations

import json

import pytest
import torch

from tests.factories import RESULTS_CPU_RUN
from vitcnn import cpu_isa

X86 = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 167
model name\t: Intel(R) Xeon(R) Processor
stepping\t: 1
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512_bf16 amx_bf16 amx_tile md_clear

processor\t: 1
vendor_id\t: GenuineIntel
model\t\t: 999
"""

ARM = """processor\t: 0
Features\t: fp asimd evtstrm aes sve sve2 bf16 i8mm
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd4f
CPU revision\t: 1
"""


def _write(tmp_path, text):
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return str(path)


def test_x86_record_first_processor_only(tmp_path):
    fields = cpu_isa.describe(cpu_isa.read_cpuinfo(_write(tmp_path, X86)))
    assert fields == {"cpu_vendor": "GenuineIntel", "cpu_family": 6, "cpu_model_number": 167, "cpu_stepping": 1,
                      "cpu_features": ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_bf16",
                                       "amx_tile", "amx_bf16"]}
    assert "md_clear" not in fields["cpu_features"]  # a security flag chooses no kernel


def test_arm_record(tmp_path):
    fields = cpu_isa.describe(cpu_isa.read_cpuinfo(_write(tmp_path, ARM)))
    assert fields["cpu_vendor"] == "0x41" and fields["cpu_model_number"] == 0xD4F and fields["cpu_family"] == 8
    assert fields["cpu_features"] == ["asimd", "bf16", "i8mm", "sve", "sve2"]
    assert cpu_isa.tier(fields["cpu_features"]) == "sve"


def test_no_cpuinfo_gives_unknowns(tmp_path):
    fields = cpu_isa.describe(cpu_isa.read_cpuinfo(str(tmp_path / "absent")))
    assert fields == {"cpu_vendor": None, "cpu_family": None, "cpu_model_number": None, "cpu_stepping": None,
                      "cpu_features": []}


@pytest.mark.parametrize("features,expected", [
    (["avx2", "avx512f", "amx_tile"], "amx"), (["avx2", "avx512f", "avx512_bf16"], "avx512"), (["avx2"], "avx2"),
    (["asimd"], "neon"), ([], "base"), (None, None),
])
def test_tier(features, expected):
    assert cpu_isa.tier(features) == expected


def test_committed_run_cpu_record_shows_amx():
    cpu = json.loads(RESULTS_CPU_RUN.read_text())["machine_info"]["cpu"]
    fields = cpu_isa.from_pytest_benchmark(cpu)
    assert (fields["cpu_vendor"], fields["cpu_family"], fields["cpu_model_number"]) == ("GenuineIntel", 6, 167)
    assert {"amx_bf16", "amx_tile", "avx512_bf16"} <= set(fields["cpu_features"])
    assert cpu_isa.tier(fields["cpu_features"]) == "amx"


def test_collect_on_this_machine_agrees_with_torch():
    fields = cpu_isa.collect()
    assert fields["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert set(fields["cpu_features"]) <= set(cpu_isa.KERNEL_FEATURES)
