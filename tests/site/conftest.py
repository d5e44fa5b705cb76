"""A history store with a known regression and two machines, shared by the site's tests.

Store: 14 commits of the real smoke run (tests/history/planted.py) where every vit_t16 setting is 15% slower from
commit 9 on, plus results/cpu/shard-1.json, a run of another machine (first-format fingerprint, ViT-B/ConvNeXt-B
settings) so the essay's machine choice has two options.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import RESULTS_CPU_RUN
from tests.history.planted import fake_commit, planted_runs
from vitcnn.history.store import HistoryStore

STEP_AT = 9
PLANTED = "vit_t16"
PLANTED_SETTING = "vit_t16-64px-bs1-fp32-auto-eager"
SMOKE_MACHINE = "cpu-intel-r-xeon-r-processor-amx-2c-torch2.14.1-d276b17b"
OTHER_MACHINE = "cpu-intel-r-xeon-r-processor-2c-torch2.14.1-93adcbc8"
PLANTED_RANGE = f"{fake_commit(STEP_AT - 1)[:10]}..{fake_commit(STEP_AT)[:10]}"


def make_store(root: Path) -> HistoryStore:
    """The store described in the module docstring, under `root`."""
    paths = planted_runs(root / "runs", commits=14, step_at=STEP_AT, step=1.15, planted=PLANTED)
    store = HistoryStore(root / "store", create=True)
    outcomes = store.add([*paths, RESULTS_CPU_RUN])
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
