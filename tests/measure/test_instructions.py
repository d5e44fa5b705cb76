"""vitcnn/measure/instructions.py without valgrind: the command line, the environment, reading a dump, refusals.
Counting itself runs under callgrind in tests/ab/test_counted.py (marker valgrind)."""

from __future__ import annotations

import pytest

from vitcnn.measure import instructions

DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  python -m vitcnn.ab.worker
part: 1

desc: I1 cache:
desc: Trigger: Client Request: dump

positions: line
events: Ir
summary: 211747851

fl=(1) ???
fn=(1) 0x0000000000108f90
0 5
totals: 211747851
"""


def test_read_totals_reads_the_events_and_totals_of_a_dump(tmp_path):
    path = tmp_path / "callgrind.out.4242.1"
    path.write_text(DUMP)
    assert instructions.read_totals(path) == {"Ir": 211747851}
    path.write_text(DUMP.replace("Ir", "Ir Dr Dw").replace("211747851", "10 20 30"))
    assert instructions.read_totals(path) == {"Ir": 10, "Dr": 20, "Dw": 30}


def test_a_truncated_dump_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "callgrind.out.1"
    path.write_text(DUMP.split("events:")[0])
    with pytest.raises(instructions.CountError, match="callgrind.out.1"):
        instructions.read_totals(path)


def test_the_counting_process_starts_with_everything_off(tmp_path):
    argv = instructions.command(["python", "-m", "vitcnn.ab.worker"], tmp_path)
    assert argv[:2] == ["valgrind", "--tool=callgrind"]
    assert "--instr-atstart=no" in argv and "--collect-atstart=no" in argv
    assert f"--callgrind-out-file={tmp_path}/callgrind.out.%p" in argv
    assert argv[-3:] == ["python", "-m", "vitcnn.ab.worker"]
    env = instructions.environment(tmp_path)
    assert env[instructions.OUT_DIR_ENV] == str(tmp_path)
    assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["OMP_WAIT_POLICY"] == "PASSIVE"


def test_without_valgrind_the_reason_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(instructions.shutil, "which", lambda tool: None)
    assert "apt-get install valgrind" in instructions.unavailable_reason()


def test_counting_outside_a_counting_process_is_refused(monkeypatch):
    monkeypatch.delenv(instructions.OUT_DIR_ENV, raising=False)
    with pytest.raises(instructions.CountError, match="not a counting process"):
        instructions.count(lambda: None)
    monkeypatch.setenv(instructions.OUT_DIR_ENV, "/nonexistent")
    with pytest.raises(ValueError, match="calls"):
        instructions.count(lambda: None, calls=0)
