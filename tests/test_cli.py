"""`python -m vitcnn compare|baseline|report`: exit codes, outputs, and the committed CPU smoke run's report and
comparison reproduced exactly (tests/data/cpu-smoke holds them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import (
    GPU_FINGERPRINT,
    LEGACY_CPU_FINGERPRINT,
    S1,
    S2,
    low_noise,
    make_run,
    result,
    run_json,
    stored,
    write_run,
)
from tests.report.helpers import gpu_results, ok
from vitcnn.cli import SUBCOMMANDS
from vitcnn.gate.stored import saved_runs
from vitcnn.cli import main as cli
from vitcnn.gate import baseline as bl
from vitcnn.runfile import load_run

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "cpu-smoke"
SMOKE_RUN = "results/cpu-smoke/run.json"  # relative: report.md names the run file as given
SMOKE_RUN_2 = "results/cpu-smoke/run-2.json"  # the next run on the same VM (scripts/regenerate-golden.sh)


# ------------------------------------------------------------------------------- the committed run, reproduced


def test_report_of_the_committed_smoke_run_is_unchanged(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    assert cli(["report", SMOKE_RUN, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.md").read_text() == (GOLDEN / "report.md").read_text()


def test_compare_of_the_committed_smoke_runs_is_unchanged(tmp_path, monkeypatch, capsys):
    # Two unchanged runs (an A/A): same or inconclusive (one run judges speed only beyond 2x) and the compile note.
    monkeypatch.chdir(REPO)
    markdown = tmp_path / "compare.md"
    assert cli(["compare", SMOKE_RUN, SMOKE_RUN_2, "--markdown", str(markdown)]) == 0
    assert capsys.readouterr().out == (GOLDEN / "compare.txt").read_text()
    assert markdown.read_text() == (GOLDEN / "compare.md").read_text()


def test_python_dash_m_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "vitcnn", "compare", SMOKE_RUN, SMOKE_RUN_2], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout == (GOLDEN / "compare.txt").read_text()
    done = subprocess.run([sys.executable, "-m", "vitcnn", "frobnicate"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_every_subcommand_is_registered_and_has_help(capsys):
    commands = ["compare", "baseline", "report", "check", "merge", "sweep", "ab", "fingerprint", "history",
                "publish", "plan", "bisect"]
    assert [add.__name__ for add in SUBCOMMANDS] == [f"add_{command}" for command in commands]
    for command in commands:
        assert cli([command, "--help"]) == 0
    for action in ("add", "run", "check", "show"):
        assert cli(["history", action, "--help"]) == 0
    assert cli([]) == 2
    assert cli(["history"]) == 2  # no action given


# ---------------------------------------------------------------------------------------------------- compare


@pytest.fixture
def runs(tmp_path):
    """Paths of a GPU baseline saved twice (its saves agree, so its samples decide speed) and of a passing, a
    slower and a foreign-fingerprint (CPU) new run."""
    gpu = GPU_FINGERPRINT
    base = tmp_path / "base.json"
    base.write_text(json.dumps(stored(make_run(result(S1, low_noise(0.01, seed=1)), result(S2), fp=gpu)).raw))
    same = write_run(tmp_path / "same.json", result(S1, low_noise(0.01, seed=2)), result(S2), fp=gpu)
    slower = write_run(tmp_path / "slower.json", result(S1, low_noise(0.02, seed=2)), result(S2), fp=gpu)
    foreign = write_run(tmp_path / "foreign.json", result(S1), result(S2))
    return {"base": str(base), "same": str(same), "slower": str(slower), "foreign": str(foreign)}


def test_cli_compare_pass(runs, capsys):
    assert cli(["compare", runs["base"], runs["same"]]) == 0
    assert "2 settings: 0 regressions" in capsys.readouterr().out


def test_cli_compare_regression(runs, capsys, tmp_path):
    md = tmp_path / "gate.md"
    assert cli(["compare", runs["base"], runs["slower"], "--markdown", str(md)]) == 1
    assert "slower !" in capsys.readouterr().out
    assert "**slower**" in md.read_text()


def test_cli_compare_judges_cpu_speed_from_saved_runs_as_the_stored_gate_does(tmp_path, capsys):
    # One CPU run against another cannot tell a slowdown from the machine's run-to-run drift (two unchanged smoke
    # runs differed by up to 31%, Mann-Whitney p 1e-53): judged only beyond 2x; a baseline saved three times gates it.
    base = write_run(tmp_path / "base.json", result(S1, low_noise(0.01, seed=1)))
    slower = write_run(tmp_path / "slower.json", result(S1, low_noise(0.018, seed=2)))
    assert cli(["compare", str(base), str(slower)]) == 0
    assert "BASE IS ONE RUN" in capsys.readouterr().out
    for seed in (3, 4, 5):
        bl.save_baseline(load_run(write_run(tmp_path / f"save{seed}.json", result(S1, low_noise(0.01, seed=seed)))),
                         tmp_path / "baselines")
    [saved] = (tmp_path / "baselines").glob("*.json")
    assert cli(["compare", str(saved), str(slower)]) == 1
    assert "slower !" in capsys.readouterr().out


def test_cli_compare_options(runs):
    assert cli(["compare", runs["base"], runs["slower"], "--tolerance", "1.5"]) == 0
    assert cli(["compare", runs["base"], runs["slower"], "--alpha", "1e-30"]) == 0  # inconclusive


def test_cli_compare_missing_allowed(tmp_path, runs):
    partial = write_run(tmp_path / "partial.json", result(S1, low_noise(0.01, seed=3)), fp=GPU_FINGERPRINT)
    assert cli(["compare", runs["base"], str(partial)]) == 1
    assert cli(["compare", runs["base"], str(partial), "--allow-missing"]) == 0


@pytest.mark.parametrize("options, code", [
    ((), 1),  # +10 MiB of 100: beyond the default 1% / 1 MiB
    (("--memory-tolerance", "0.2"), 0),
    (("--memory-tolerance", "0.05"), 1),
    (("--memory-abs-mib", "12"), 0),  # MiB, not bytes: 12 MiB allows the 10 MiB growth
    (("--memory-abs-mib", "8"), 1),
    (("--memory-tolerance", "0", "--memory-abs-mib", "0"), 1),
], ids=["defaults", "rel 20%", "rel 5%", "abs 12 MiB", "abs 8 MiB", "none"])
def test_cli_compare_memory_tolerances(tmp_path, capsys, options, code):
    """The activation peak grew from 100 to 110 MiB (same speed): --memory-tolerance (relative) and
    --memory-abs-mib (MiB) each decide whether that is `memory-up`; the larger allowance wins."""
    samples = low_noise(0.01, seed=1)
    base = write_run(tmp_path / "base.json", result(S1, samples, activation_peak_bytes=100 * 2**20))
    grown = write_run(tmp_path / "grown.json", result(S1, samples, activation_peak_bytes=110 * 2**20))
    assert cli(["compare", str(base), str(grown), *options]) == code
    out = capsys.readouterr().out
    assert ("memory-up" in out) == (code == 1), out


def test_cli_compare_fingerprint_mismatch(runs, capsys):
    assert cli(["compare", runs["base"], runs["foreign"]]) == 2
    err = capsys.readouterr().err
    assert "device: base='cuda' new='cpu'" in err and "gpu_name" in err
    assert cli(["compare", runs["base"], runs["foreign"], "--allow-cross-machine"]) == 0
    assert "CROSS-MACHINE" in capsys.readouterr().out


@pytest.mark.parametrize("problem", ["missing", "corrupt", "bad-option", "bad-alpha", "unknown-flag"])
def test_cli_compare_usage_errors(runs, tmp_path, capsys, problem):
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{")
    argv = {
        "missing": ["compare", runs["base"], str(tmp_path / "nope.json")],
        "corrupt": ["compare", str(corrupt), runs["same"]],
        "bad-option": ["compare", runs["base"], runs["same"], "--tolerance", "abc"],
        "bad-alpha": ["compare", runs["base"], runs["same"], "--alpha", "2"],
        "unknown-flag": ["compare", runs["base"], runs["same"], "--frobnicate"],
    }[problem]
    assert cli(argv) == 2
    assert capsys.readouterr().err


# --------------------------------------------------------------------------------------------------- baseline


def test_cli_baseline_save_and_show(runs, tmp_path, capsys):
    directory = tmp_path / "store"
    assert cli(["baseline", "save", runs["base"], "--dir", str(directory)]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.parent == directory and load_run(path).results.keys() == {S1.id, S2.id}
    assert cli(["baseline", "show", "--dir", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "2 settings (2 ok); 1 saved run(s)" in out and "RE-SAVE" not in out


def test_cli_baseline_save_takes_several_runs_each_one_saved_run(tmp_path, capsys):
    paths = [write_run(tmp_path / f"run{k}.json", result(S1, low_noise(0.01, seed=k))) for k in range(3)]
    assert cli(["baseline", "save", *map(str, paths), "--dir", str(tmp_path / "store")]) == 0
    [path] = set(capsys.readouterr().out.split())
    assert [r.medians[S1.id].median_s for r in saved_runs(load_run(path))] == [
        load_run(p).results[S1.id].median_s for p in paths]
    assert cli(["baseline", "save", str(paths[0]), str(tmp_path / "nope.json"), "--dir", str(tmp_path / "store")]) == 2
    assert len(saved_runs(load_run(path))) == 4 and "nope.json" in capsys.readouterr().err  # the first one stays


def test_cli_baseline_record_saves_fresh_processes(tmp_path, capsys, monkeypatch):
    """`baseline record --runs 2`: two pytest processes, each saved; a CI job's baseline in one step."""
    monkeypatch.chdir(REPO)
    store = tmp_path / "store"
    assert cli(["baseline", "record", "--runs", "2", "--dir", str(store), "--", "benchmarks", "-p",
                "no:cacheprovider", "-k", "vit_t16 and 64px and bs1 and eager", "--vitcnn-target-seconds", "0.1",
                "--vitcnn-compile-times", "off", "--vitcnn-eager-twin", "off"]) == 0
    [path] = store.glob("*.json")
    runs = saved_runs(load_run(path))
    assert len(runs) == 2 and all(list(r.medians) == ["vit_t16-64px-bs1-fp32-auto-eager"] for r in runs)
    assert "2 run(s) saved" in capsys.readouterr().out
    assert cli(["baseline", "record", "--runs", "0"]) == 2


def test_cli_baseline_show_lists_baselines_that_need_a_resave(tmp_path, capsys):
    legacy = write_run(tmp_path / "old.json", result(S1), fp=LEGACY_CPU_FINGERPRINT)
    current = write_run(tmp_path / "new.json", result(S1))
    for run in (legacy, current):
        assert cli(["baseline", "save", str(run), "--dir", str(tmp_path / "store")]) == 0
    capsys.readouterr()
    assert cli(["baseline", "show", "--dir", str(tmp_path / "store")]) == 0
    out = capsys.readouterr().out
    old_slug = load_run(legacy).slug
    assert out.count("NEEDS RE-SAVE") == 1 and "cpu_features" in out
    assert out.splitlines()[-1] == f"1 baseline(s) need a re-save: {old_slug}"


def test_cli_baseline_save_errors(runs, tmp_path, capsys):
    assert cli(["baseline", "save", str(tmp_path / "nope.json"), "--dir", str(tmp_path)]) == 2
    slug = load_run(runs["base"]).slug
    corrupt = bl.baseline_path(slug, tmp_path / "store")
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"\x00garbage")
    assert cli(["baseline", "save", runs["base"], "--dir", str(tmp_path / "store")]) == 2
    assert "untouched" in capsys.readouterr().err
    assert corrupt.read_bytes() == b"\x00garbage"
    assert cli(["baseline", "show", "--dir", str(tmp_path / "store")]) == 2
    assert cli(["baseline"]) == 2  # no action given


# ------------------------------------------------------------------------------------------------------ report


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_cli_writes_report_and_appends_summary(tmp_path):
    gpu = write_json(tmp_path / "gpu.json", run_json(gpu_results(), GPU_FINGERPRINT))
    summary = tmp_path / "summary.md"
    summary.write_text("previous step\n")
    assert cli(["report", str(gpu), "--out", str(tmp_path / "out"), "--summary", str(summary)]) == 0
    report_text = (tmp_path / "out" / "report.md").read_text()
    assert summary.read_text() == "previous step\n" + report_text
    assert list((tmp_path / "out").glob("*.png"))


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"benchmarks": []}),
                                     json.dumps({"benchmarks": [], "machine_info": {}})])
def test_cli_invalid_run_file_exits_2_naming_it(tmp_path, capsys, content):
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    good = write_json(tmp_path / "good.json", run_json([ok("vit_b16", 224)]))
    assert cli(["report", str(good), str(bad), "--out", str(tmp_path / "out")]) == 2
    assert str(bad) in capsys.readouterr().err
    assert not (tmp_path / "out" / "report.md").exists()


def test_report_of_a_missing_file_exits_2(tmp_path):
    run = write_json(tmp_path / "run.json", run_json([ok("vit_b16", 224)]))
    assert cli(["report", str(run), "--out", str(tmp_path / "out")]) == 0
    assert cli(["report", str(tmp_path / "missing.json"), "--out", str(tmp_path / "out")]) == 2


def test_report_of_a_real_cpu_smoke_run(smoke_run, tmp_path):
    """The whole pipeline on real measurements: every setting listed, figures are real PNGs of a sensible size."""
    from PIL import Image

    from vitcnn.runfile import load_run

    run = load_run(smoke_run.json_path)
    assert cli(["report", str(smoke_run.json_path), "--out", str(tmp_path)]) == 0
    path = tmp_path / "report.md"
    text = path.read_text()
    for setting_id in run.results:
        assert setting_id in text
    assert "CPU measurement" in text and "NOT MEASURED" in text
    pngs = sorted(tmp_path.glob("*.png"))
    assert {p.name.split("_cpu-")[0] for p in pngs} == {"throughput", "latency", "activation_memory", "flops", "mfu"}
    assert len(pngs) == 5 * 2  # five metrics x batch sizes 1 and 2
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(png) as image:
            assert image.size[0] >= 600 and image.size[1] >= 400


# ------------------------------------------------------------------------------------------------------- check


def test_check_exits_0_on_a_sound_run_1_on_a_symptom_2_on_an_unreadable_file(tmp_path, capsys):
    sound = write_run(tmp_path / "sound.json", result(S1, samples=low_noise(0.01)))
    two_speeds = write_run(tmp_path / "spread.json", result(S2, samples=[0.01] * 6 + [0.02] * 4))
    assert cli(["check", str(sound)]) == 0
    assert "nothing suspicious" in capsys.readouterr().out
    assert cli(["check", str(sound), str(two_speeds)]) == 1
    assert f"[spread] {S2.id}" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text("{}")
    assert cli(["check", str(tmp_path / "bad.json")]) == 2


# ----------------------------------------------------------------------------------------------------- history


HISTORY_RUNS = ("results/cpu/2026-11-22/shard-1.json", "results/cpu-smoke/run.json", "results/cpu-smoke/run-2.json")


def test_history_add_then_show_lists_the_runs_oldest_commit_first(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    store = str(tmp_path / "store")
    assert cli(["history", "add", store, *HISTORY_RUNS[1:]]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["added", "added"]
    assert cli(["history", "add", store, *HISTORY_RUNS]) == 0  # two already stored: still a success
    assert [line.split()[:2] for line in capsys.readouterr().out.splitlines()] == [
        ["added", HISTORY_RUNS[0]], ["present", HISTORY_RUNS[1]], ["present", HISTORY_RUNS[2]]]
    assert cli(["history", "show", store]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"3 run(s) in {store}"
    commits = [load_run(REPO / path).raw["commit_info"]["id"][:10] for path in HISTORY_RUNS]
    assert [line.split()[1] for line in lines[:-1]] == commits  # shard-1's commit (Nov 22) before the smoke runs'


def test_history_add_refuses_a_foreign_file_but_adds_the_others(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    foreign = write_json(tmp_path / "foreign.json", {"benchmarks": [], "machine_info": {}})
    store = tmp_path / "store"
    assert cli(["history", "add", str(store), str(foreign), HISTORY_RUNS[1]]) == 2
    out = capsys.readouterr().out
    assert f"refused  {foreign}: {foreign}: no vitcnn section" in out and f"added    {HISTORY_RUNS[1]}" in out
    assert cli(["history", "show", str(store)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"1 run(s) in {store}"
    (tmp_path / "empty").mkdir()
    assert cli(["history", "add", str(store), str(tmp_path / "empty")]) == 2
    assert "no run files in" in capsys.readouterr().err


def test_history_commands_refuse_a_damaged_store_and_leave_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    store = tmp_path / "store"
    assert cli(["history", "add", str(store), HISTORY_RUNS[1]]) == 0
    (store / "index.json").write_text('{"vitcnn_history": 1, "runs": [')
    before = sorted((p.name, p.read_bytes()) for p in store.rglob("*") if p.is_file() and p.name != ".lock")
    capsys.readouterr()
    for argv in (["add", str(store), HISTORY_RUNS[2]], ["show", str(store)], ["check", str(store)]):
        assert cli(["history", *argv]) == 2, argv
        assert "unreadable index" in capsys.readouterr().err
    assert sorted((p.name, p.read_bytes()) for p in store.rglob("*") if p.is_file() and p.name != ".lock") == before
    assert cli(["history", "show", str(tmp_path / "nowhere")]) == 2
    assert cli(["history", "check", str(tmp_path / "nowhere")]) == 2
    assert not (tmp_path / "nowhere").exists()


def test_options_after_dash_dash_are_for_history_run_only(tmp_path, capsys, monkeypatch):
    """`history run STORE --commits A..B --profile P -- OPTIONS` hands OPTIONS to each commit's pytest (after the
    profile); any other subcommand refuses them instead of ignoring them. The backfill itself is replaced here:
    no commit is measured."""
    from vitcnn.history import backfill

    calls = []

    def fake_backfill(store, spec, out_dir, pytest_args, every=1, **options):
        calls.append((spec, pytest_args, every, options))
        return [backfill.Measured("a" * 40, "measured"), backfill.Measured("b" * 40, "skipped", "why")]

    monkeypatch.setattr(backfill, "backfill", fake_backfill)
    store = str(tmp_path / "store")
    assert cli(["history", "run", store, "--commits", "A..B", "--every", "3", "--profile", "smoke",
                "--out-dir", str(tmp_path / "out"), "--", "--vitcnn-threads", "1", "-k", "vit"]) == 0
    assert calls == [("A..B", ["--vitcnn-profile=smoke", "--vitcnn-threads", "1", "-k", "vit"], 3,
                      {"skip_stored": None, "warm_cache": False, "metric": "time"})]
    assert capsys.readouterr().out.splitlines()[-1].startswith("2 commit(s): 1 measured, 1 skipped")
    assert cli(["history", "run", store, "--commits", "A..B", "--skip-stored", "--warm-cache", "--metric",
                "instructions"]) == 0
    assert calls[-1][1:] == ([], 1, {"skip_stored": "", "warm_cache": True, "metric": "instructions"})
    assert cli(["history", "check", store, "--", "--vitcnn-threads", "1"]) == 2  # only history run passes them on
    assert "unrecognized arguments" in capsys.readouterr().err
    monkeypatch.setattr(backfill, "backfill", lambda *a, **k: [backfill.Measured("c" * 40, "failed", "boom")])
    assert cli(["history", "run", store, "--commits", "A..B"]) == 1  # a commit failed


@pytest.mark.parametrize("argv, message", [
    (["--commits", "no-such-ref..HEAD"], "git cannot list"),
    (["--commits", "HEAD~1..HEAD", "--every", "0"], "at least 1"),
])
def test_history_run_refuses_a_range_git_cannot_list(tmp_path, capsys, argv, message):
    assert cli(["history", "run", str(tmp_path / "store"), *argv]) == 2
    assert message in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ fingerprint


def test_fingerprint_prints_the_slug_a_run_records_and_refuses_a_missing_gpu(capsys):
    import torch

    from vitcnn import fingerprint

    assert cli(["fingerprint", "--slug", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.strip() == fingerprint.slug(fingerprint.collect(torch.device("cpu")))
    assert cli(["fingerprint", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["device"] == "cpu"
    if not torch.cuda.is_available():
        assert cli(["fingerprint", "--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err
