"""The host-state readers (vitcnn/measure/host.py): plausible values, counters that only grow, systems without the
files, and a busy neighbour seen as one."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from vitcnn.measure import host


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_a_snapshot_reads_plausible_values_and_its_counters_only_grow():
    first = host.snapshot()
    spin(0.05)
    second = host.snapshot()
    assert second.wall_ns > first.wall_ns and second.own_cpu_ns >= first.own_cpu_ns
    assert second.minor_faults >= first.minor_faults and second.involuntary >= first.involuntary
    if first.cpus is not None:  # a Linux /proc with schedstat
        assert all(0 <= cpu < (os.cpu_count() or 1) for cpu in first.cpus)
        assert second.run_ns >= first.run_ns and second.wait_ns >= first.wait_ns
    if first.busy_ns is not None:
        assert second.busy_ns >= first.busy_ns
    state = host.block_state(first, second, calls=1)
    assert 0.04 < state["wall_s"] < 5
    assert state["others_cores"] is None or 0 <= state["others_cores"] <= (os.cpu_count() or 1) + 0.5
    assert state["wait_share"] is None or 0 <= state["wait_share"] <= 1


def test_missing_files_give_none_not_an_error(monkeypatch, tmp_path):
    monkeypatch.setattr(host, "PROC", tmp_path / "no-proc")
    monkeypatch.setattr(host, "CGROUP_USAGE", ((tmp_path / "no-cgroup", "usage_usec", 1000),))
    snap = host.snapshot()
    assert snap.cpus is None and snap.run_ns is None and snap.busy_ns is None and snap.steal_ns is None
    state = host.block_state(snap, host.snapshot(), calls=2)
    assert state["others_cores"] is None and state["wait_share"] is None and state["steal_share"] is None
    assert state["minor_faults_per_call"] >= 0
    assert host.summary([state])["others_cores_max"] is None


def test_the_machine_busy_counter_reads_each_format(monkeypatch, tmp_path):
    v2 = tmp_path / "cpu.stat"
    v2.write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    v1 = tmp_path / "cpuacct.usage"
    v1.write_text("123456789\n")
    monkeypatch.setattr(host, "CGROUP_USAGE", ((tmp_path / "absent", "usage_usec", 1000), (v2, "usage_usec", 1000)))
    assert host.machine_busy_ns() == (1_500_000, str(v2))
    monkeypatch.setattr(host, "CGROUP_USAGE", ((v1, None, 1),))
    assert host.machine_busy_ns() == (123456789, str(v1))


@pytest.mark.skipif(host.machine_busy_ns()[0] is None, reason="no machine-wide CPU counter on this system")
def test_a_busy_neighbour_shows_as_other_processes_cpu_time():
    quiet = host.block_state(before := host.snapshot(), (time.sleep(0.3), host.snapshot())[1], calls=1)
    spinner = "import time\nend = time.time() + 3\nwhile time.time() < end: pass"
    neighbour = subprocess.Popen([sys.executable, "-c", spinner])
    try:
        time.sleep(0.5)  # the neighbour is spinning now
        before = host.snapshot()
        time.sleep(0.5)
        busy = host.block_state(before, host.snapshot(), calls=1)
    finally:
        neighbour.kill()
        neighbour.wait()
    assert busy["others_cores"] > 0.7, busy  # one core spinning: about 1.0
    assert busy["others_cores"] > quiet["others_cores"] + 0.5, (quiet, busy)


def test_the_summary_keeps_the_worst_and_the_typical_block():
    blocks = [{"others_cores": x, "wait_share": w, "involuntary_switches": 2, "minor_faults_per_call": f,
               "major_faults": 0, "cpus_start": [c], "cpus_end": [c], "busy_source": "/proc/stat", "steal_share": 0.0}
              for x, w, f, c in ((0.0, 0.01, 3, 0), (0.9, 0.4, 1, 1), (0.1, 0.02, 2, 0))]
    summary = host.summary(blocks)
    assert summary["others_cores_max"] == 0.9 and summary["others_cores_median"] == 0.1
    assert summary["wait_share_max"] == 0.4 and summary["involuntary_switches"] == 6
    assert summary["cpus"] == [0, 1] and summary["minor_faults_per_call_median"] == 2


def test_every_timed_block_of_a_setting_records_its_host_state():
    from tests.factories import setting
    from vitcnn.measure import pipeline
    from vitcnn.measure.options import MeasureOptions

    quick = MeasureOptions(target_seconds=0.05, warmup_seconds=0.05, min_rounds=3, compile_times=False,
                           eager_twin=False)
    result = pipeline.measure(setting("vit_t16", 64, compile_mode="eager"), "cpu", options=quick)
    assert result.status == "ok" and result.info["host_state"]["blocks"] == 1
    assert result.info["host_state"]["speed_probe_ns_median"] > 0
    assert "contended" in result.info  # None on a quiet machine, the reason beside a busy one
    prepared = pipeline.prepare(setting("vit_t16", 64, compile_mode="eager"), "cpu", quick)
    try:
        prepared.time_block(3)
        prepared.time_block(3)
        assert len(prepared.host.blocks) == 2 and all(b["wall_s"] > 0 for b in prepared.host.blocks)
        assert all(b["speed_probe_ns"] > 0 for b in prepared.host.blocks)
    finally:
        prepared.close()
        pipeline.free_memory()


def test_contention_names_a_neighbour_or_a_wait_and_nothing_else():
    assert host.contention({"others_cores": 0.1, "wait_share": 0.01}) is None
    assert host.contention({"others_cores": None, "wait_share": None}) is None
    assert "0.93 cores" in host.contention({"others_cores": 0.93, "wait_share": 0.01})
    assert "waited for a CPU 35%" in host.contention({"others_cores": 0.0, "wait_share": 0.35})


def test_the_speed_probe_times_a_fixed_amount_of_work():
    """Twice the loop takes about twice as long (the best of several, so a preempted repeat does not decide), and a
    probe costs about a millisecond, outside the timed calls."""
    one = min(host.speed_probe_ns(loops=20_000) for _ in range(5))
    two = min(host.speed_probe_ns(loops=40_000) for _ in range(5))
    assert 1.4 < two / one < 2.8, (one, two)
    start = time.perf_counter()
    host.speed_probe_ns()
    assert time.perf_counter() - start < 0.05


def test_the_summary_keeps_the_median_speed_probe():
    assert host.summary([{"speed_probe_ns": v} for v in (300.0, 900.0, 310.0)])["speed_probe_ns_median"] == 310.0
    assert host.summary([{}])["speed_probe_ns_median"] is None  # a block from before the probe existed
