"""Compile modes: CUDA-graph use comes from inductor's options; both compile caches are read."""

from __future__ import annotations

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
