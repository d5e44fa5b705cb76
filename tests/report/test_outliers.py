"""Memory outliers: a setting far above its peers' activation peak, and the ops that held it."""

from __future__ import annotations

from tests.report.helpers import make_run, ok
from vitcnn.report import outliers
from vitcnn.report.markdown import outliers_markdown
from vitcnn.table import MIB

HOLDERS = [{"op": "aten::linear", "bytes": 1400 * MIB, "blocks": 12}, {"op": "aten::gelu", "bytes": 100 * MIB, "blocks": 1}]


def run(*results):
    return make_run(*results).results


def test_a_peak_three_times_the_smallest_peer_is_an_outlier_with_its_holders():
    results = run(ok("vit_b16", 1024, activation_peak_bytes=1554 * MIB, activation_peak_holders=HOLDERS),
                  ok("vitdet_b16", 1024, activation_peak_bytes=200 * MIB),
                  ok("convnext_b", 1024, activation_peak_bytes=96 * MIB))
    found = outliers.memory_outliers(results)
    assert [(o.result.setting.model, o.peer.setting.model) for o in found] == [("vit_b16", "convnext_b")]
    assert round(found[0].ratio, 1) == 16.2 and found[0].holders == HOLDERS
    text = outliers_markdown(results)
    assert "**vit_b16-1024px-bs1-bf16-flash-default**: 1,554 MiB, 16.2x convnext_b's 96.0 MiB" in text
    assert "| `aten::linear` | 1,400 | 12 |" in text


def test_peers_share_resolution_batch_and_precision_and_old_runs_say_holders_were_not_recorded():
    results = run(ok("vit_b16", 1024, activation_peak_bytes=1000 * MIB),
                  ok("convnext_b", 1024, batch=32, activation_peak_bytes=10 * MIB),  # another batch: no peer
                  ok("convnext_b", 1024, precision="fp16", activation_peak_bytes=10 * MIB))  # another precision
    assert outliers.memory_outliers(results) == [] and outliers_markdown(results) is None
    old = run(ok("vit_b16", 1024, activation_peak_bytes=1000 * MIB), ok("convnext_b", 1024, activation_peak_bytes=10 * MIB))
    assert "not recorded" in outliers_markdown(old)
