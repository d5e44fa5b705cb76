"""vitcnn/explain/diff.py: which ops an explanation names, the compile facts it lists, and how it reads."""

from __future__ import annotations

import json
import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitcnn.explain import diff


def profile(ops: dict[str, tuple[int, float, int]], calls: int = 2, device: str = "cpu") -> dict:
    """A profile as ops.profile_ops returns it, from {name: (count, self_us, flops)} totals over `calls` calls."""
    return {"calls": calls, "device": device,
            "ops": {name: {"count": n, "self_cpu_us": us, "self_device_us": us / 10 if device == "cuda" else 0.0,
                           "flops": f} for name, (n, us, f) in ops.items()}}


A = profile({"aten::addmm": (96, 6000.0, 360), "aten::gelu": (24, 900.0, 0), "aten::view": (340, 160.0, 0)})
B = profile({"aten::addmm": (96, 5400.0, 360), "aten::gelu": (24, 1000.0, 0), "aten::view": (580, 260.0, 0),
             "aten::mm": (240, 2600.0, 300)})


def test_the_new_matmul_leads_with_its_calls_and_flops_per_model_call():
    changes = diff.explain_ops("s", A, B).changes
    top = changes[0]
    assert (top.name, top.a, top.b, top.a_calls, top.b_calls, top.b_flops) == ("aten::mm", 0, 1.3, 0, 120, 150)
    assert [c.name for c in changes] == ["aten::mm", "aten::addmm", "aten::view", "aten::gelu"]  # by |change|
    assert diff.Explanation("s", "ops", "ms per call", changes).headline() == \
        "aten::mm +1.300 ms (new in B), calls 0 -> 120"


def test_an_ops_explanation_carries_the_changes_and_each_sides_whole_time_per_call():
    e = diff.explain_ops("s", A, B, traces={"A": "a.json", "B": "b.json"})
    assert [c.name for c in e.changes] == ["aten::mm", "aten::addmm", "aten::view", "aten::gelu"]
    assert (e.kind, e.unit, e.traces["B"]) == ("ops", "ms per call", "b.json")
    assert (e.total_a, e.total_b) == pytest.approx(((6000 + 900 + 160) / 2000, (5400 + 1000 + 260 + 2600) / 2000))


def test_on_a_gpu_the_device_time_is_the_cost_and_a_kernel_is_not_counted_twice():
    a, b = (profile({"aten::mm": (2, us, 0), "sm90_gemm": (2, us, 0)}, device="cuda") for us in (1000.0, 3000.0))
    for p in (a, b):
        p["ops"]["sm90_gemm"]["kernel"] = True  # the kernel's own event: the same time as aten::mm's device time
    [change] = diff.explain_ops("s", a, b).changes
    assert change.name == "aten::mm" and change.delta == pytest.approx(0.1)  # (3000 - 1000) us / 10 / 2 calls


def test_ops_whose_calls_or_flops_changed_are_listed_even_when_their_time_did_not_move_much():
    ops_a = {f"op{i}": (2, 1000.0 * (i + 1), 0) for i in range(12)}
    ops_b = {**{f"op{i}": (2, 1100.0 * (i + 1), 0) for i in range(12)}, "aten::new_cheap": (4, 1.0, 8)}
    names = [c.name for c in diff.explain_ops("s", profile(ops_a), profile(ops_b), top=5).changes]
    assert "aten::new_cheap" in names and len(names) == 5 and names[0] == "op11"


@given(st.dictionaries(st.sampled_from([f"f{i}" for i in range(30)]), st.integers(0, 10**9), max_size=30),
       st.dictionaries(st.sampled_from([f"f{i}" for i in range(30)]), st.integers(0, 10**9), max_size=30),
       st.integers(1, 12))
def test_the_chosen_functions_are_the_largest_changes(a, b, top):
    chosen = diff.function_changes(a, b, top)
    moved = sorted((abs(b.get(k, 0) - a.get(k, 0)) for k in set(a) | set(b) if b.get(k, 0) != a.get(k, 0)),
                   reverse=True)
    assert len(chosen) == min(top, len(moved))
    assert [abs(c.delta) for c in chosen] == moved[:len(chosen)]


def test_compile_facts_that_differ_and_the_phases_that_moved():
    a = {"compiled": {"graphs": 1, "graph_breaks": 0, "graph_break_reasons": [], "compile_cache": "miss"},
         "compile_phases": {"bytecode_tracing": 1.0, "compile_fx_inner": 4.0, "build_guards": 0.01}}
    b = {"compiled": {"graphs": 2, "graph_breaks": 1, "graph_break_reasons": ["Unsupported: call to print"],
                      "compile_cache": "miss"},
         "compile_phases": {"bytecode_tracing": 1.02, "compile_fx_inner": 7.5, "build_guards": 0.03}}
    assert diff.compile_changes(a, b) == [
        ("graphs", 1, 2), ("graph breaks", 0, 1), ("graph break only in B", None, "Unsupported: call to print"),
        ("compile phase compile_fx_inner (s)", 4.0, 7.5)]  # tracing moved 2%; guards' 0.03 s is nothing
    assert diff.compile_changes({}, {}) == []


def test_the_nsys_command_runs_the_one_setting_as_pytest_does():
    from vitcnn import settings

    for profile in ("blog-lite", "blog-train"):
        for one in settings.profile_settings(profile, "cuda"):
            argv = shlex.split(diff.nsys_command(one, profile, ("-p", "tests.plant_matmul")))
            assert argv[:5] == ["nsys", "profile", "--trace=cuda,nvtx,osrt", "--sample=cpu", "-o"]
            test_file = f"benchmarks/test_{'training' if one.task == 'train' else 'inference'}.py"
            assert argv[6:10] == ["python", "-m", "pytest", test_file]
            assert argv[-2:] == ["-p", "tests.plant_matmul"]
            start = argv.index("--vitcnn-profile")
            options = dict(zip(argv[start:-2:2], argv[start + 1:-2:2]))
            chosen = settings.parse_overrides({a.name: options.get(f"--vitcnn-{a.option}")
                                               for a in settings.AXES.values()})
            assert [s.id for s in settings.select(options["--vitcnn-profile"], "cuda", chosen)] == [one.id]


def test_text_markdown_and_json_say_the_same_thing():
    changes = diff.explain_ops("s", A, B).changes
    e = diff.Explanation("vit_t16-64px-bs1-fp32-auto-eager", "ops", "ms per call", changes, 3.5, 5.0,
                         [("graphs", 1, 2)], {"A": "/t/a.json", "B": "/t/b.json"}, "nsys profile x")
    text, markdown = diff.render(e), diff.render(e, markdown=True)
    assert text.startswith("Why vit_t16-64px-bs1-fp32-auto-eager moved: aten::mm +1.300 ms (new in B)")
    assert markdown.startswith("#### Why vit_t16-64px-bs1-fp32-auto-eager moved: aten::mm")
    assert "| aten::mm | 0.000 ms | 1.300 ms | +1.300 ms (new in B) | 0 -> 120 | 0 -> 1.5e-07 |" in markdown
    assert "- graphs: A 1, B 2" in markdown and "`/t/b.json`" in markdown and "`nsys profile x`" in markdown
    data = json.loads(json.dumps(e.to_json()))
    assert data["headline"] == e.headline() and data["changes"][0]["name"] == "aten::mm"
    assert data["compile"] == [["graphs", 1, 2]]
    failed = diff.Explanation("s", "ops", "ms per call", error="side B's setup failed again: oom")
    assert diff.render(failed).startswith("Why s moved: no explanation: side B's setup failed again: oom")


@pytest.mark.parametrize("profile, device", [("smoke", "cpu"), ("blog-lite", "cuda"), ("blog-train", "cuda")])
def test_the_ab_command_of_a_stored_gates_row_selects_exactly_that_setting(profile, device):
    from vitcnn import settings
    from vitcnn.cli import build_parser
    from vitcnn.cli.common import selected_settings

    for one in settings.profile_settings(profile, device):
        argv = shlex.split(diff.ab_command(one, "0123abc", profile))
        assert argv[:6] == ["python", "-m", "vitcnn", "ab", "--a-ref", "0123abc"]
        args = build_parser().parse_args(argv[3:])
        assert [s.id for s in selected_settings(args, profile, device)] == [one.id]
