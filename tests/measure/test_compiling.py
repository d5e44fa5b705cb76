"""Compile modes: CUDA-graph use comes from inductor's options; both compile caches are read."""

from __future__ import annotations

import time

import pytest
import torch

from vitcnn.measure import compiling


@pytest.mark.parametrize("mode, graphs", [("eager", False), ("default", False), ("reduce-overhead", True),
                                          ("max-autotune", True), ("max-autotune-no-cudagraphs", False)])
def test_cuda_graphs_follow_the_inductor_options(mode, graphs):
    assert compiling.uses_cuda_graphs(mode, "cuda") is graphs
    assert compiling.uses_cuda_graphs(mode, "cpu") is False


def test_cuda_graphs_are_read_from_the_options_not_the_name(monkeypatch):
    import torch._inductor

    monkeypatch.setattr(torch._inductor, "list_mode_options", lambda mode: {"triton.cudagraphs": mode == "max-autotune"})
    assert compiling.uses_cuda_graphs("max-autotune") and not compiling.uses_cuda_graphs("reduce-overhead")


def test_cache_counters_cover_fx_graph_and_aot_autograd(monkeypatch):
    from torch._dynamo.utils import counters

    before = compiling.cache_counters()
    counters["aot_autograd"]["autograd_cache_hit"] += 1
    counters["inductor"]["fxgraph_cache_miss"] += 2
    try:
        delta = compiling.cache_delta(before, compiling.cache_counters())
    finally:
        counters["aot_autograd"]["autograd_cache_hit"] -= 1
        counters["inductor"]["fxgraph_cache_miss"] -= 2
    assert delta == {"aot_autograd.autograd_cache_hit": 1, "fx_graph.fxgraph_cache_miss": 2}


@pytest.mark.parametrize("delta, verdict", [
    ({"aot_autograd.autograd_cache_hit": 1}, "hit"),  # an AOTAutograd hit serves the graph; FX cache not asked
    ({"fx_graph.fxgraph_cache_hit": 1}, "hit"),
    ({"aot_autograd.autograd_cache_miss": 1, "fx_graph.fxgraph_cache_miss": 1}, "miss"),
    ({"aot_autograd.autograd_cache_miss": 1, "fx_graph.fxgraph_cache_hit": 1}, "partial"),
    ({}, "none"), ({"aot_autograd.autograd_cache_bypass": 1}, "none"),
])
def test_cache_verdict(delta, verdict):
    assert compiling.cache_verdict(delta) == verdict


def test_eager_is_not_compiled():
    model = torch.nn.Linear(2, 2)
    assert compiling.compile_model(model, "eager") is model


def _with_a_graph_break(name: str, img_size: int) -> torch.nn.Module:
    """The real model with a graph break planted in its second block (what a `.item()` or a print would do)."""
    from vitcnn.zoo import models

    model = models.build(name, img_size)
    block = model.blocks[1]
    original = block.forward

    def forward(*args, **kwargs):
        torch._dynamo.graph_break()
        return original(*args, **kwargs)

    block.forward = forward
    return model


class _GuardedOnACallCounter(torch.nn.Module):
    """The real model behind a Python int that changes every call: Dynamo specialises on it, so every call
    recompiles (until its cache limit sends the frame to eager)."""

    def __init__(self, name: str, img_size: int):
        from vitcnn.zoo import models

        super().__init__()
        self.inner, self.calls = models.build(name, img_size), 0
        self.num_classes = self.inner.num_classes

    def forward(self, x):
        self.calls += 1
        return self.inner(x) + 0 * self.calls




def _measure(build, compile_mode="default"):
    from tests.factories import setting
    from vitcnn.measure import pipeline
    from vitcnn.measure.pipeline import MeasureOptions

    options = MeasureOptions(target_seconds=0.05, min_rounds=3, max_rounds=10, warmup_calls=2, warmup_seconds=0.0)
    return pipeline.measure(setting("vit_t16", 64, compile_mode=compile_mode), "cpu", options=options, build=build)


def test_a_planted_graph_break_is_counted_with_its_reason():
    from vitcnn.zoo import models

    clean = _measure(models.build).info
    assert (clean["graphs"], clean["graph_breaks"], clean["graph_break_reasons"], clean["recompiles"]) == (1, 0, [], 0)
    broken = _measure(_with_a_graph_break)
    assert broken.status == "ok", broken.reason
    info = broken.info
    assert info["graph_breaks"] >= 1 and info["graphs"] >= 2 and info["recompiles"] == 0
    assert any("graph_break" in reason for reason in info["graph_break_reasons"]), info["graph_break_reasons"]
    eager = _measure(models.build, "eager").info
    assert eager["graphs"] is eager["graph_breaks"] is eager["recompiles"] is None  # nothing was compiled


def test_a_planted_recompile_is_counted():
    outcome = _measure(_GuardedOnACallCounter)
    assert outcome.status == "ok", outcome.reason
    assert outcome.info["recompiles"] >= 3 and outcome.info["graph_breaks"] == 0


def test_graph_fields_take_the_difference_of_two_snapshots():
    before = {"graphs": 4, "frames": 9, "breaks": {"a": 2}}
    after = {"graphs": 6, "frames": 12, "breaks": {"a": 3, "b  with\n  spaces": 1}}
    assert compiling.graph_fields(before, after) == {"graphs": 2, "graph_breaks": 2,
                                                     "graph_break_reasons": ["a", "b with spaces"]}
    assert compiling.recompiles(after, {"graphs": 6, "frames": 15, "breaks": {}}) == 3


def _small() -> tuple[torch.nn.Module, torch.Tensor]:
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 4)), torch.randn(8, 16)


def test_cold_compiles_miss_an_empty_cache_every_time_and_warm_ones_hit_it():
    # A first compile that hit the user's caches cannot be the cold figure: cold_compile runs in a fresh directory,
    # twice in a row misses twice (in-memory caches cleared), and the warm recompile hits the user's caches (here
    # a directory of the test's own, filled by the model's first compile). Cold costs a C++ build.
    from torch._inductor.utils import fresh_cache

    model, x = _small()
    compiled = compiling.compile_model(model, "default")
    with fresh_cache(), torch.no_grad():
        compiled(x)
        first = compiling.compile_extras(0.0, "hit", lambda: compiled(x))
        second = compiling.compile_extras(0.0, "hit", lambda: compiled(x))
    for fields in (first, second):
        assert (fields["compile_cold_cache"], fields["compile_warm_cache"]) == ("miss", "hit")
        assert fields["compile_cold_s"] > fields["compile_warm_s"] > 0
    assert set(first) == set(compiling.NOT_MEASURED)


def test_a_first_compile_that_missed_every_cache_is_the_cold_figure_and_is_not_compiled_again():
    # An empty user cache (a first run): the model's own compile was cold, so only the warm recompile follows,
    # served from what that compile wrote: the FX-graph cache misses once in all, not twice.
    from torch._inductor.utils import fresh_cache

    model, x = _small()
    compiled = compiling.compile_model(model, "default")
    with fresh_cache(), torch.no_grad():
        compiling.forget_compiled()
        before, start = compiling.cache_counters(), time.perf_counter()
        compiled(x)
        compile_s = time.perf_counter() - start
        verdict = compiling.cache_verdict(compiling.cache_delta(before, compiling.cache_counters()))
        fields = compiling.compile_extras(compile_s, verdict, lambda: compiled(x))
        misses = compiling.cache_delta(before, compiling.cache_counters()).get("fx_graph.fxgraph_cache_miss")
    assert verdict == "miss" and misses == 1
    assert (fields["compile_cold_s"], fields["compile_cold_cache"], fields["compile_warm_cache"]) == \
        (compile_s, "miss", "hit")


def test_between_undoes_the_cold_call_and_the_warm_call_keeps_its_gradients():
    model = torch.nn.Linear(4, 1)
    compiled, x = compiling.compile_model(model, "default"), torch.randn(2, 4)
    seen = []

    def step():
        compiled(x).sum().backward()
        seen.append(model.weight.grad.clone())

    compiling.compile_extras(0.0, "hit", step, lambda: model.zero_grad(set_to_none=True))
    assert len(seen) == 2 and torch.equal(seen[0], seen[1])  # not accumulated into twice the gradient
    assert torch.equal(model.weight.grad, seen[1])  # the warm step's gradients stay for the optimizer
