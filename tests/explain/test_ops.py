"""vitcnn/explain/ops.py: a call's ops under torch.profiler, per op name, with a trace."""

from __future__ import annotations

import json

import torch

from vitcnn.explain import ops


def test_every_op_of_the_profiled_calls_is_counted_with_its_flops_and_a_trace_is_written(tmp_path):
    linear, x = torch.nn.Linear(32, 16), torch.randn(4, 32)
    w = torch.randn(16, 16)

    def call() -> None:
        with torch.no_grad():
            linear(x) @ w

    call()
    profiled = ops.profile_ops(call, torch.device("cpu"), calls=3, trace=tmp_path / "t" / "trace.json")
    assert profiled["calls"] == 3 and profiled["device"] == "cpu"
    mm, addmm = profiled["ops"]["aten::mm"], profiled["ops"]["aten::addmm"]
    assert mm["count"] == 3 and addmm["count"] == 3
    assert mm["flops"] == 3 * 2 * 4 * 16 * 16 and addmm["flops"] == 3 * 2 * 4 * 32 * 16
    assert mm["self_cpu_us"] > 0 and mm["self_device_us"] == 0
    events = json.loads((tmp_path / "t" / "trace.json").read_text())["traceEvents"]
    assert sum(e.get("name") == "aten::mm" for e in events) == 3
