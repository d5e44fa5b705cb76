"""A history store with a known regression and two machines, shared by the site's tests.

Store: 14 commits of the real smoke run (tests/history/planted.py) where every vit_t16 setting is 15% slower from
commit 9 on, with instruction counts that step by 15% there too for the settings at 64 px (CONFIRMED: the code)
and stay flat for those at 128 px (HELD: machine drift, not confirmed), plus a run of another machine so the
essay's machine choice has two options:
results/cpu/2026-11-22/shard-1.json (first-format fingerprint, ViT-B/ConvNeXt-B settings) with its core count changed to 4. Unchanged it is the smoke
run's own VM (same legacy identity and kernel features), which the history may rightly merge into that machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.factories import RESULTS_CPU_RUN
from tests.history.planted import fake_commit, planted_runs
from vitcnn import fingerprint
from vitcnn.history.store import HistoryStore

STEP_AT = 9
PLANTED = "vit_t16"
PLANTED_SETTING = "vit_t16-64px-bs1-fp32-auto-eager"
CONFIRMED = "vit_t16-64px"  # the planted settings whose instruction counts step with their latency
HELD_SETTING = "vit_t16-128px-bs1-fp32-auto-eager"  # planted, its counts flat
SMOKE_MACHINE = "cpu-intel-r-xeon-r-processor-amx-2c-torch2.14.1-d276b17b"
OTHER_CORES = 4
OTHER_MACHINE = fingerprint.slug({**json.loads(RESULTS_CPU_RUN.read_text())["machine_info"]["vitcnn_fingerprint"],
                                  "cpu_count": OTHER_CORES})
PLANTED_RANGE = f"{fake_commit(STEP_AT - 1)[:10]}..{fake_commit(STEP_AT)[:10]}"


def other_machine_run(out_dir: Path) -> Path:
    """results/cpu/2026-11-22/shard-1.json as measured on a 4-core machine (a different legacy identity)."""
    data = json.loads(RESULTS_CPU_RUN.read_text())
    data["machine_info"]["vitcnn_fingerprint"]["cpu_count"] = OTHER_CORES
    path = out_dir / "other-machine.json"
    path.write_text(json.dumps(data))
    return path


def make_store(root: Path) -> HistoryStore:
    """The store described in the module docstring, under `root`."""
    paths = planted_runs(root / "runs", commits=14, step_at=STEP_AT, step=1.15, planted=PLANTED, count_step=1.15,
                         count_planted=CONFIRMED)
    store = HistoryStore(root / "store", create=True)
    outcomes = store.add([*paths, other_machine_run(root / "runs")])
    assert [o.outcome for o in outcomes] == ["added"] * 15, outcomes
    return store


@pytest.fixture(scope="session")
def planted_store(tmp_path_factory) -> HistoryStore:
    return make_store(tmp_path_factory.mktemp("site-store"))


@pytest.fixture(scope="session")
def planted_site(planted_store, tmp_path_factory) -> Path:
    """The site of planted_store, published once (tests must not change it)."""
    from vitcnn.site.publish import publish

    out = tmp_path_factory.mktemp("site") / "site"
    index = publish(planted_store, out)
    assert index == out / "index.html"
    return out
