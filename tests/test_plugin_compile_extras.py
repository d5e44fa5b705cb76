"""Cold/warm compile time and the eager twin through pytest, as a user turns them on: the run JSON's fields and
the terminal table's `vs eager` column (one compiled tiny setting: ~30 s, most of it the cold C++ build)."""

from __future__ import annotations

import json

from tests.pytest_runs import run_benchmarks

SETTING = "convnext_atto-64px-bs1-fp32-nchw-default"


def test_compile_times_and_the_eager_twin_reach_the_run_json_and_the_table(tmp_path):
    path = tmp_path / "run.json"
    done = run_benchmarks("--vitcnn-models", "convnext_atto", "--vitcnn-res", "64", "--vitcnn-batch", "1",
                          "--vitcnn-compile", "default", "--vitcnn-compile-times", "on", "--vitcnn-eager-twin", "on",
                          "--vitcnn-target-seconds", "0.1", "--vitcnn-warmup-seconds", "0.1",
                          f"--benchmark-json={path}")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    [bench] = json.loads(path.read_text())["benchmarks"]
    info = bench["extra_info"]
    assert info["setting_id"] == SETTING
    assert (info["compile_cold_cache"], info["compile_warm_cache"]) == ("miss", "hit")
    assert info["compile_cold_s"] > info["compile_warm_s"] > 0
    assert info["speedup_ci_low"] <= info["speedup_vs_eager"] <= info["speedup_ci_high"]
    assert len(info["speedup_log_ratios"]) == 10 and info["memory_compression"] > 0
    row = next(line for line in done.stdout.splitlines() if line.startswith(SETTING))
    assert f"{info['speedup_vs_eager']:.2f}x" in row
