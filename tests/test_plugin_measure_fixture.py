"""The vitcnn_measure fixture: a sticky CUDA error stops the sweep with one error naming the setting."""

from __future__ import annotations

import json

from tests.pytest_runs import run_benchmarks


def test_a_sticky_cuda_error_stops_the_sweep_naming_the_setting(tmp_path):
    path = tmp_path / "run.json"
    done = run_benchmarks("--vitcnn-res", "64", "--vitcnn-batch", "1", "--vitcnn-compile", "eager",
                          "--vitcnn-target-seconds", "0.05", "--vitcnn-warmup-seconds", "0.05",
                          "-p", "tests.force_failure", f"--benchmark-json={path}",
                          env={"VITCNN_FORCE_CUDA_ERROR": "vitdet_t16"})
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]  # pytest: interrupted
    assert "1 failed, 1 passed" in done.stdout, output[-3000:]  # vit_t16 ran, vitdet_t16 failed, nothing after
    assert "sweep stopped: vitdet_t16-64px-bs1-fp32-auto-eager hit a CUDA error" in output
    statuses = {e["id"]: e["status"] for e in json.loads(path.read_text())["vitcnn"]["settings"]}
    assert statuses == {"vit_t16-64px-bs1-fp32-auto-eager": "ok", "vitdet_t16-64px-bs1-fp32-auto-eager": "error"}
