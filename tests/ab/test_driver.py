"""`python -m vitcnn ab` (vitcnn/ab/driver.py, cli.py): the balanced order, block sizes, fingerprints, exit codes,
and real sessions on tiny eager settings (cheap: a few short blocks each)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from vitcnn import cli
from vitcnn.ab import design, driver
from vitcnn.ab.sides import Side
from vitcnn.runfile import load_run

TINY = ("--models", "vit_t16,convnext_atto", "--res", "64", "--batch", "1", "--compile", "eager",
        "--device", "cpu", "--processes", "2", "--rounds", "3")
QUICK = "--vitcnn-warmup-seconds=0.2"


def test_pair_order_is_balanced_abba_baab():
    order = "".join(driver.pair_order(p) for p in range(8))
    assert order == "ABBABAABBAABABBA"
    for pairs in (4, 8, 12, 16):
        first = [driver.pair_order(p)[0] for p in range(pairs)]
        assert first.count("A") == first.count("B")


def test_calls_per_block_follow_the_slower_side():
    assert driver.calls_per_block([0.001, 0.002], target_seconds=1.0, blocks=10) == 50
    assert driver.calls_per_block([0.5, 0.2], target_seconds=1.0, blocks=10) == design.MIN_CALLS


class _Pool:
    """A worker that replies at once: its setup's estimate of the time per call (the warm-up's, read beside other
    processes' setups) and, when it serves "calibrate", the time per call timed alone."""

    def __init__(self, warm_up: float, alone: float | None) -> None:
        self.warm_up, self.alone, self.sent, self.count_flops = warm_up, alone, [], []
        self.commands = frozenset({"setup", "block"} | ({"calibrate"} if alone else set()))

    def send(self, cmd: str, **fields) -> None:
        self.sent.append(cmd)
        if cmd == "setup":
            self.count_flops.append(fields["count_flops"])

    def receive(self, cmd: str) -> dict:
        return {"ok": True, "status": "ok", "per_call_s": self.warm_up if cmd == "setup" else self.alone}

    def request(self, cmd: str, **fields) -> dict:
        self.send(cmd, **fields)
        return self.receive(cmd)


@pytest.mark.parametrize("alone, calls", [(0.01, 10), (None, design.MIN_CALLS)])
def test_blocks_are_sized_from_the_time_per_call_measured_alone(alone, calls):
    from vitcnn.settings import profile_settings

    setting = profile_settings("smoke", "cpu")[0]
    options = driver.ABOptions(Side("A"), Side("B"), [setting], "smoke", first=2, rounds=5, target_seconds=1.0)
    pools = {name: [_Pool(warm_up=0.2, alone=alone) for _ in range(3)] for name in "AB"}
    run = driver._Setting(pools, driver.SettingRecord(setting, setting), options, started=0.0)
    run.add_processes(options.first)
    assert run.record.processes == 2 and not run.failed()
    # 1 s over 5 rounds x 2 processes: 0.1 s per block; 10 calls at 10 ms, the floor at the warm-up's 200 ms
    assert design.calls_per_block(run.per_call, options.target_seconds, options.rounds * options.first) == calls
    calibrated = [w for name in "AB" for w in pools[name] if "calibrate" in w.sent]
    assert len(calibrated) == (4 if alone else 0)  # each new process once; an older worker cannot
    # only a side's first process counts FLOPs: its numbers stand for the side
    assert [[w.count_flops for w in pools[name]] for name in "AB"] == [[[True], [False], []]] * 2


def _hello(torch_version: str) -> dict:
    from tests.factories import CPU_FINGERPRINT

    return {"machine_info": {"vitcnn_fingerprint": {**CPU_FINGERPRINT, "torch": torch_version}}}


def test_fingerprints_may_differ_only_when_the_interpreters_do():
    same = driver.ABOptions(Side("A"), Side("B"), [], "smoke")
    notes, refusal = driver._fingerprint_check({"A": _hello("2.10"), "B": _hello("2.11")}, same)
    assert refusal and "torch" in refusal and "--a-python/--b-python" in refusal
    two = driver.ABOptions(Side("A", python="/opt/a/python"), Side("B", python="/opt/b/python"), [], "smoke")
    notes, refusal = driver._fingerprint_check({"A": _hello("2.10"), "B": _hello("2.11")}, two)
    assert refusal is None and "torch: A='2.10' B='2.11'" in notes[0]


def test_sides_under_different_malloc_policies_are_compared_with_a_note():
    from vitcnn.measure import allocator

    hello = {name: _hello("2.10") for name in "AB"}
    hello["B"]["machine_info"]["vitcnn_fingerprint"]["malloc"] = allocator.DEFAULT
    hello["A"]["machine_info"]["vitcnn_fingerprint"]["malloc"] = allocator.FIXED
    notes, refusal = driver._fingerprint_check(hello, driver.ABOptions(Side("A"), Side("B"), [], "smoke"))
    assert refusal is None and len(notes) == 1
    assert "different conditions (malloc: A=" in notes[0] and allocator.DEFAULT in notes[0]


@pytest.mark.parametrize("args, message", [
    (("--processes", "1"), "--first-processes"),
    (("--rounds", "1"), "--rounds"),
    (("--detect", "0"), "--detect"),
    (("--alpha", "2"), "--alpha"),
    (("--a-env", "NOEQUALS"), "NAME=VALUE"),
    (("--b-opts=--vitcnn-gate",), "not a measurement option"),
    (("--b-opts=--vitcnn-sdpa=math,flash",), "one value"),
    (("--res", "65"), "--res"),
    (("--models", "resnet9000"), "resnet9000"),
    (("--device", "tpu"), "--device"),
])
def test_usage_errors_exit_2_before_anything_starts(args, message, capsys):
    assert cli.main(["ab", *TINY, *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("args, design", [((), (4, 4)), (("--processes", "2"), (2, 2)),
                                          (("--processes", "6"), (6, 6)),
                                          (("--processes", "5", "--first-processes", "2"), (5, 2))])
def test_one_look_at_every_process_unless_first_processes_asks_for_stages(args, design):
    from vitcnn.cli import build_parser
    from vitcnn.cli.ab import session_fields

    fields = session_fields(build_parser().parse_args(["ab", "--device", "cpu", *args]), "cpu")
    assert (fields["processes"], fields["first"]) == design


def test_a_side_that_cannot_start_exits_2(capsys, tmp_path):
    assert cli.main(["ab", *TINY, "--b-python", str(tmp_path / "python9")]) == 2
    assert "cannot start" in capsys.readouterr().err
    assert cli.main(["ab", *TINY, "--b-ref", "no-such-ref-anywhere"]) == 2
    assert "cannot check out" in capsys.readouterr().err


def test_a_a_session_end_to_end_with_every_output(tmp_path, capsys):
    """Two tiny settings, identical code on both sides (B from a git worktree of HEAD): outputs and wiring, and a
    second stage (a third process per side) because a 0.1% detectable slowdown is never reached. The threshold is
    wide because this checks the plumbing; the statistics are tested in tests/gate/test_paired.py."""
    out, md, js = tmp_path / "runs", tmp_path / "ab.md", tmp_path / "ab.json"
    code = cli.main(["ab", *TINY, "--processes", "3", "--first-processes", "2", "--threshold", "0.5",
                     "--detect", "0.001",
                     f"--a-opts={QUICK}", f"--b-opts={QUICK}", "--b-ref", "HEAD",
                     "--markdown", str(md), "--json", str(js), "--out-dir", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert "vitcnn ab: passed: 2 settings: 0 regressions; 2 inconclusive; worst detectable slowdown" in captured.out
    assert "[2/2] convnext_atto-64px-bs1-fp32-nchw-eager: 3 processes per side, 6 rounds, B/A" in captured.err
    data = json.loads(js.read_text())
    assert data["options"]["looks"] == 2 and data["options"]["processes"] == 3
    assert data["sides"]["B"]["ref"] == "HEAD" and data["sides"]["B"]["worker"]["cwd"] != data["sides"]["A"][
        "worker"]["cwd"]
    for entry in data["settings"]:
        assert entry["verdict"]["labels"] == ["inconclusive"] and entry["processes"] == 3
        assert [look["processes"] for look in entry["looks"]] == [2, 3]
        timeline = sorted(entry["blocks"], key=lambda b: b["start_s"])
        assert len({b["start_s"] for b in timeline}) == len(timeline)  # one block at a time
        for pair in {b["pair"] for b in timeline}:  # each pair: one process of each side, in the balanced order
            two = [b for b in timeline if b["pair"] == pair]
            assert "".join(b["side"] for b in two) == driver.pair_order(pair) and two[0]["process"] == two[1][
                "process"]
        per_process = {(b["side"], b["process"]): 0 for b in timeline}
        for b in timeline:
            per_process[(b["side"], b["process"])] += 1
        assert per_process == {("A", 0): 6, ("A", 1): 6, ("A", 2): 3, ("B", 0): 6, ("B", 1): 6, ("B", 2): 3}
        assert all(len(b["samples"]) == entry["calls_per_block"] for b in entry["blocks"])
    assert "| `vit_t16-64px-bs1-fp32-auto-eager` | inconclusive |" in md.read_text()
    a, b = load_run(out / "a.json"), load_run(out / "b.json")
    assert set(a.results) == set(b.results) == {e["id"] for e in data["settings"]}
    first = data["settings"][0]
    assert len(a.results[first["id"]].samples) == 15 * first["calls_per_block"]  # every process's blocks
    assert cli.main(["compare", str(out / "a.json"), str(out / "b.json"), "--tolerance", "10"]) == 0  # wiring
    assert cli.main(["report", str(out / "a.json"), str(out / "b.json"), "--out", str(tmp_path / "report")]) == 0


def test_planted_slowdown_and_oom_in_b_fail_the_session_and_the_slowdown_is_explained(tmp_path, capsys):
    """B's blocks each run 100 extra matmuls (tests/plant_matmul, about 9x the FLOPs of vit_t16: far beyond the
    spread of 2 processes per side on a noisy VM, whose t has one degree of freedom), B's convnext_atto runs out of memory (tests/force_failure). The `slower` row is explained: the
    profile pass names the matmul op that B runs and A does not, and writes a trace per side."""
    out = tmp_path / "out"
    code = cli.main(["ab", *TINY, f"--a-opts={QUICK}", f"--b-opts={QUICK} -p tests.plant_matmul -p tests.force_failure",
                     "--b-env", "VITCNN_PLANT_MATMUL=1", "--b-env", "VITCNN_PLANT_REPEAT=100",
                     "--b-env", "VITCNN_FORCE_OOM=convnext_atto", "--json", str(tmp_path / "ab.json"),
                     "--markdown", str(tmp_path / "ab.md"), "--out-dir", str(out), "--explain-calls", "2"])
    captured = capsys.readouterr()
    assert code == 1, captured.out + captured.err
    entries = {e["id"]: e for e in json.loads((tmp_path / "ab.json").read_text())["settings"]}
    slow = entries["vit_t16-64px-bs1-fp32-auto-eager"]
    # slower by time, and by the exact FLOP count too (each planted matmul is counted)
    assert slow["verdict"]["labels"] == ["slower", "flops-up"] and slow["verdict"]["ratio"] > 2, slow["verdict"]
    assert "FLOPs +" in slow["verdict"]["detail"]
    assert entries["convnext_atto-64px-bs1-fp32-nchw-eager"]["verdict"]["labels"] == ["now-oom"]
    assert entries["convnext_atto-64px-bs1-fp32-nchw-eager"]["explanation"] is None  # only slower/flops-up are profiled
    assert "vitcnn ab: FAILED: 2 settings: 2 regressions (1 slower, 1 flops-up, 1 now-oom)" in captured.out
    why = slow["explanation"]
    top = why["changes"][0]
    assert top["name"] == "aten::mm" and top["a_calls"] == 0 and top["b_calls"] == 12 * 100, why  # 12 blocks
    assert top["b_flops"] > 0 and top["b"] > 0 and why["headline"].startswith("aten::mm +")
    for side in "AB":
        trace = json.loads((out / "traces" / f"{side.lower()}-vit_t16-64px-bs1-fp32-auto-eager.trace.json").read_text())
        assert any(e.get("name") == "aten::addmm" for e in trace["traceEvents"])
    assert "Why vit_t16-64px-bs1-fp32-auto-eager moved: aten::mm +" in captured.out
    assert "#### Why vit_t16-64px-bs1-fp32-auto-eager moved: aten::mm +" in (tmp_path / "ab.md").read_text()


def _template_processes() -> set[int]:
    """Live processes running a worker template or a fork of one (a fork keeps the template's command line)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"workers/template.py" in (entry / "cmdline").read_bytes():
                found.add(int(entry.name))
        except OSError:
            pass
    return found


@pytest.mark.parametrize("fresh", ["on", "off"])
def test_a_side_that_dies_in_the_middle_of_the_blocks_ends_the_session_with_exit_2(capsys: pytest.CaptureFixture,
                                                                                   fresh: str):
    """Side B's first worker exits when asked for its second timed block (tests/force_failure.py): the session
    stops with exit 2 (not a verdict on half the blocks), names the side, the request and the worker's last words,
    and leaves no process of either side behind: no worker, no template, no fork."""
    import os
    import re

    before = _template_processes()
    code = cli.main(["ab", "--models", "vit_t16", "--res", "64", "--batch", "1", "--compile", "eager",
                     "--device", "cpu", "--processes", "2", "--rounds", "3", "--fresh-processes", fresh,
                     f"--a-opts={QUICK}", f"--b-opts={QUICK} -p tests.force_failure",
                     "--b-env", "VITCNN_FORCE_EXIT_AT_BLOCK=2"])
    captured = capsys.readouterr()
    assert code == 2, captured.out + captured.err
    assert "vitcnn ab: error: side B: the worker exited" in captured.err and "during 'block'" in captured.err
    assert "planted exit at block 2 (forced by test)" in captured.err  # the log's tail
    assert "vitcnn ab: passed" not in captured.out and "vitcnn ab: FAILED" not in captured.out
    if fresh == "on":
        pids = [int(p) for p in re.findall(r"a fresh fork of template (\d+) per setting", captured.err)]
        assert len(pids) == 2, captured.err
    else:
        pids = [int(p) for found in re.findall(r"pids ([\d, ]+)\)", captured.err) for p in found.split(", ")]
        assert len(pids) == 4, captured.err
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    deadline = time.monotonic() + 30  # forks exit once their channel closes
    while _template_processes() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _template_processes() - before


def test_a_side_of_several_processes_pools_their_pairs_and_takes_the_median_compile_times():
    infos = [{"speedup_log_ratios": [0.1, 0.2], "compile_cold_s": 10.0, "compile_warm_s": 1.0},
             {"speedup_log_ratios": [0.3, 0.4], "compile_cold_s": 14.0, "compile_warm_s": 3.0},
             {"speedup_log_ratios": [0.2, 0.2], "compile_cold_s": 30.0, "compile_warm_s": 2.0}]
    pooled = driver.pooled(infos)
    assert pooled["speedup_log_ratios"] == [0.1, 0.2, 0.3, 0.4, 0.2, 0.2]
    assert pooled["speedup_vs_eager"] == pytest.approx(math.exp(1.4 / 6))
    assert pooled["speedup_ci_low"] < pooled["speedup_vs_eager"] < pooled["speedup_ci_high"]
    assert (pooled["compile_cold_s"], pooled["compile_warm_s"]) == (14.0, 2.0)
    assert driver.pooled([{}, {}]) == {}
