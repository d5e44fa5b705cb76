"""The end-of-run table shows numbers for ok settings and the reason for the others."""

from __future__ import annotations

from tests.factories import setting
from vitcnn.measure import Outcome
from vitcnn.summary import busy_host_warning, summary_table


def test_rows_for_ok_and_failed_settings():
    ok, oom = setting("vit_t16"), setting("convnext_atto")
    info = {"median_s": 0.0125, "images_per_s": 80.0, "tflops_per_s": 0.5, "mfu_spec": None, "mfu_matmul": 0.25,
            "activation_peak_bytes": 3 * 2**20, "sdpa_backend_used": "flash"}
    records = {ok.id: {"status": "ok", "reason": None}, oom.id: {"status": "oom", "reason": "CUDA out of memory"}}
    lines = summary_table(records, {ok.id: Outcome("ok", None, info)}).splitlines()
    assert lines[0].split()[:2] == ["setting", "status"] and set(lines[1]) <= {"-", " "}
    ok_row = next(line for line in lines if line.startswith(ok.id)).split()
    assert ok_row[1:] == ["ok", "12.500", "80.0", "0.50", "25.0%", "(mm)", "3.0", "flash"]
    oom_row = next(line for line in lines if line.startswith(oom.id))
    assert " oom " in oom_row and oom_row.endswith("CUDA out of memory")
    assert lines[0].split()[-1] == "note"


def test_busy_host_is_warned_about():
    quiet = Outcome("ok", None, {"host_load_1m": 1.9})
    busy = Outcome("ok", None, {"host_load_1m": 4.2})
    assert busy_host_warning({"a": quiet}, cpu_count=2) is None
    warning = busy_host_warning({"a": quiet, "b": busy}, cpu_count=2)
    assert "4.2 on 2 cores" in warning and "1 setting(s)" in warning
