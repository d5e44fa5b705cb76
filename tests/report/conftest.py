"""The two-device report (a GPU run with failures and a CPU smoke-like run) shared by the report tests."""

from __future__ import annotations

import pytest

from tests.factories import CPU_FINGERPRINT, GPU_FINGERPRINT
from tests.report.helpers import gpu_results, make_run, smoke_results
from vitcnn import report as rp


@pytest.fixture(scope="module")
def two_device_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    gpu = make_run(*gpu_results(), fp=GPU_FINGERPRINT, path="gpu.json")
    cpu = make_run(*smoke_results(), fp=CPU_FINGERPRINT, path="cpu.json", profile="smoke")
    return rp.write_report([gpu, cpu], out), gpu, cpu
