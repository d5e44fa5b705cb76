"""Each side of `vitcnn ab` as a run file: the pytest-benchmark JSON the plugin writes, built by the same code.

pytest-benchmark's own `Metadata` holds the samples and computes the stats; its `pytest_benchmark_generate_json`
lays out the file; runfile's `status_entry` / `vitcnn_section` and fingerprint's `machine_fields` (in the worker's
hello) add vitcnn's parts. So `vitcnn report`, `vitcnn compare` and `vitcnn baseline save` read a side like any
pytest run.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

from pytest_benchmark.plugin import pytest_benchmark_generate_json
from pytest_benchmark.stats import Metadata
from pytest_benchmark.utils import safe_dumps

from vitcnn.result import Result
from vitcnn.runfile import status_entry, vitcnn_section

BENCHMARK = "benchmarks/test_inference.py::test_inference"  # where pytest would have measured the setting


def _benchmark(result: Result) -> Metadata:
    name = BENCHMARK.rsplit("::", 1)[1]
    fixture = SimpleNamespace(
        name=f"{name}[{result.setting.id}]", fullname=f"{BENCHMARK}[{result.setting.id}]", group=None,
        param=result.setting.id, params={"vitcnn_setting": result.setting.id}, extra_info=result.info,
        cprofile_stats=None, has_error=False)
    bench = Metadata(fixture, iterations=1, options={"rounds": len(result.samples), "iterations": 1})
    for sample in result.samples:
        bench.update(sample)
    return bench


def run_json(results: list[Result], machine_info: dict, profile: str) -> dict:
    """The run file of one side: every setting's status, and benchmarks (raw samples) for those that ran."""
    benchmarks = [_benchmark(r) for r in results if r.status == "ok" and r.samples]
    data = pytest_benchmark_generate_json(config=None, benchmarks=benchmarks, include_data=True,
                                          machine_info=machine_info, commit_info={})
    data["vitcnn"] = vitcnn_section(profile, [status_entry(r.setting, r.status, r.reason) for r in results])
    return json.loads(safe_dumps(data))
