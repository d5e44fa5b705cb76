"""Run-time estimates: measured figures where a machine of the device measured them, the calibrated model
elsewhere, always saying which; costs.json is what the committed results give; `vitcnn plan` adds it up."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import result, run_json, setting
from vitcnn.cli import main as cli
from vitcnn.scale import costs, shard
from vitcnn.settings import profile_settings

REPO = Path(__file__).resolve().parents[2]
H200 = REPO / "results" / "nvidia-h200-torch2.11.0-73a409fd" / "first-contact-1"
EAGER, COMPILED = setting(), setting(compile_mode="default")
OTHER = setting(resolution=128)  # the same model as EAGER and COMPILED, never measured
FOREIGN = setting(model="convnext_atto")  # a model nobody measured


def machine(device: str = "cpu", **seconds_and_extras: tuple[float, bool]) -> costs.Machine:
    settings = {s.id: s for s in (EAGER, COMPILED, OTHER, FOREIGN)}
    return costs.Machine("a 2-core VM", device, ("results/x.json",),
                         {sid: costs.Measured(settings[sid], seconds, extras)
                          for sid, (seconds, extras) in seconds_and_extras.items()})


def flat_model(s) -> float:
    return 10.0


def test_a_measured_setting_gives_its_figure_and_machine():
    [e] = costs.estimate([EAGER], "cpu", True, [machine(**{EAGER.id: (4.0, False)})], flat_model)
    assert (e.seconds, e.machine, e.note, e.measured) == (4.0, "a 2-core VM", "measured", True)


def test_a_compiled_figure_measured_without_the_extras_is_a_lower_bound_only_when_the_run_has_them():
    m = [machine(**{COMPILED.id: (20.0, False)})]
    assert "lower bound" in costs.estimate([COMPILED], "cpu", True, m, flat_model)[0].note
    assert costs.estimate([COMPILED], "cpu", False, m, flat_model)[0].note == "measured"


def test_an_unmeasured_setting_is_the_model_scaled_by_its_median_error_on_the_same_model():
    m = [machine(**{EAGER.id: (4.0, True), COMPILED.id: (6.0, True)})]
    [e] = costs.estimate([OTHER], "cpu", True, m, flat_model)
    assert e.seconds == pytest.approx(5.0) and not e.measured and "not measured on cpu" in e.note


def test_a_model_never_measured_on_a_cpu_has_no_estimate_and_on_a_gpu_the_uncalibrated_model():
    m = [machine(**{EAGER.id: (4.0, True)}), machine("cuda", **{EAGER.id: (1.0, True)})]
    [cpu] = costs.estimate([FOREIGN], "cpu", True, m, flat_model)
    [gpu] = costs.estimate([FOREIGN], "cuda", True, m, flat_model)
    assert (cpu.seconds, cpu.measured, cpu.note) == (None, False, "never measured on cpu: no estimate")
    assert (gpu.seconds, gpu.measured) == (10.0, False) and "uncalibrated" in gpu.note


def test_figures_of_another_device_are_never_used():
    [e] = costs.estimate([EAGER], "cuda", True, [machine("cpu", **{EAGER.id: (4.0, True)})], flat_model)
    assert (e.seconds, e.measured) == (10.0, False) and "uncalibrated" in e.note


@given(st.dictionaries(st.sampled_from([EAGER.id, COMPILED.id, OTHER.id, FOREIGN.id]),
                       st.tuples(st.floats(0.1, 1e4), st.booleans()), min_size=1))
def test_dump_and_load_keep_every_figure_to_a_tenth_of_a_second(entries):
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "costs.json"
        file.write_text(costs.dump([machine(**entries)]))
        [back] = costs.load(file)
    assert {sid: (round(e.seconds, 1), e.extras, e.setting.id) for sid, e in back.measured.items()} == \
        {sid: (round(seconds, 1), extras, sid) for sid, (seconds, extras) in entries.items()}


def test_run_files_give_their_settings_wall_times(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run_json([result(EAGER, setting_wall_s=3.5),
                                         result(COMPILED, setting_wall_s=30.0, compile_cold_s=9.0),
                                         result(FOREIGN)])))  # no setting_wall_s: not a figure
    [m] = costs.from_runs([path], root=tmp_path)
    assert m.sources == ("run.json",) and m.device == "cpu"
    assert {sid: (e.seconds, e.extras) for sid, e in m.measured.items()} == \
        {EAGER.id: (3.5, False), COMPILED.id: (30.0, True)}


def test_a_gpu_first_contact_slice_splits_its_wall_time_over_its_settings():
    machines = costs.from_first_contact(H200 / "summary.md", sorted(H200.glob("run-*.json")), root=REPO)
    figures = {sid: e.seconds for m in machines for sid, e in m.measured.items()}
    # summary.md: "slice 1024px bs1" took 75 s and "slice 224px bs32" 64 s, three settings each; the timed-out
    # 1024 px bs32 slice gives nothing
    assert figures["vit_b16-1024px-bs1-bf16-auto-default"] == pytest.approx(25.0)
    assert figures["convnext_b-224px-bs32-bf16-channels_last-default"] == pytest.approx(64 / 3)
    assert len(figures) == 6 and all(m.device == "cuda" for m in machines)


@pytest.mark.slow
def test_the_package_costs_are_what_the_committed_results_give():
    done = subprocess.run([sys.executable, "scripts/derive-costs.py", "--check"], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_smoke_setting_on_a_cpu_is_measured():
    estimates = costs.estimate(profile_settings("smoke", "cpu"), "cpu", True)
    assert all(e.measured and e.note == "measured" for e in estimates)


def test_plan_prints_every_setting_the_shards_and_a_total_that_adds_up(capsys):
    assert cli(["plan", "--profile", "smoke", "--device", "cpu", "--shards", "3"]) == 0
    out = capsys.readouterr().out
    selected = profile_settings("smoke", "cpu")
    assert all(s.id in out for s in selected)
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("shard")] == \
        ["shard 1/3", "shard 2/3", "shard 3/3"]
    assert f"{len(selected)} of {len(selected)} settings measured" in out
    counts = [int(line.split(": ")[1].split()[0]) for line in out.splitlines() if line.startswith("shard")]
    assert sum(counts) == len(selected) == sum(len(p) for p in shard.partition(selected, 3))


def test_plan_says_what_was_never_measured_on_the_device(capsys):
    assert cli(["plan", "--profile", "blog-train", "--device", "cuda"]) == 0
    out = capsys.readouterr().out
    count = len(profile_settings("blog-train", "cuda"))
    assert f"0 of {count} settings measured" in out and f"{count} NOT measured on cuda" in out
    assert cli(["plan", "--profile", "cpu"]) == 0  # base models, never measured on a CPU with their wall times
    assert "total: unknown on one cpu" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [(["--profile", "nope"], "unknown profile"),
                                           (["--device", "tpu"], "--device must be cpu or cuda"),
                                           (["--res", "100"], "--res"), (["--shards", "0"], "--shards")])
def test_plan_refuses_bad_input_with_a_usage_error(argv, message, capsys):
    assert cli(["plan", *argv]) == 2
    assert message in capsys.readouterr().err
