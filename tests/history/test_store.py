"""The history store (vitcnn/history/store.py): real run files in and out unchanged, one entry per run content,
pytest-benchmark's storage tree walked, foreign files refused with the reason, a damaged store refused without
being rewritten, and concurrent adds serialised by the lock."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from tests.factories import S1, result, run_json
from vitcnn.history.store import INDEX, RUNS, HistoryStore, StoreError, content_key
from vitcnn.runfile import load_run

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "results" / "cpu-smoke" / "run.json"
SMOKE_2 = REPO / "results" / "cpu-smoke" / "run-2.json"
# a run written before the fingerprint's version 2
FIRST_FORMAT = REPO / "results" / "cpu" / "2026-11-22" / "shard-1.json"


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (the lock file aside: taking a lock is not writing the store), by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def tiny_run(path: Path, when: str) -> Path:
    """A small valid run file, distinct per `when` (its content key depends on it)."""
    data = run_json([result(S1)])
    data["datetime"] = when
    data["commit_info"] = {"id": "a" * 40, "time": when, "dirty": False}
    path.write_text(json.dumps(data))
    return path


# ---------------------------------------------------------------------------------------------------- round trip


def test_real_runs_round_trip_with_their_keys(tmp_path):
    store = HistoryStore(tmp_path / "h", create=True)
    added = store.add([SMOKE, SMOKE_2, FIRST_FORMAT])
    assert [a.outcome for a in added] == ["added"] * 3
    reopened = HistoryStore(tmp_path / "h")  # what a later process sees: the index on disk
    assert len(reopened.entries) == 3
    for path in (SMOKE, SMOKE_2, FIRST_FORMAT):
        raw = json.loads(path.read_text())
        [entry] = [e for e in reopened.entries if e.source == str(path)]
        assert entry.key == content_key(raw) and len(entry.key) == 16
        assert (entry.commit, entry.dirty, entry.commit_time) == (
            raw["commit_info"]["id"], raw["commit_info"]["dirty"], raw["commit_info"]["time"])
        assert entry.run_time == raw["datetime"]
        assert entry.torch == raw["machine_info"]["vitcnn_fingerprint"]["torch"]
        assert entry.profile == raw["vitcnn"]["profile"]
        original = load_run(path)
        assert entry.slug == original.slug
        # stored byte for byte, and loads as the same run
        assert reopened.path_of(entry).read_bytes() == path.read_bytes()
        loaded = reopened.load(entry)
        assert loaded.results.keys() == original.results.keys()
        assert all(loaded.results[k].samples == original.results[k].samples for k in original.results)
        assert loaded.fingerprint == original.fingerprint
    # runs() yields oldest commit first: the first-format shard's commit (Nov 22) precedes the smoke runs' (Nov 27)
    assert next(e.source for e, _ in reopened.runs()) == str(FIRST_FORMAT)


def test_the_same_run_twice_even_reindented_is_one_entry(tmp_path):
    store = HistoryStore(tmp_path / "h", create=True)
    assert store.add([SMOKE])[0].outcome == "added"
    before = snapshot(tmp_path / "h")
    reindented = tmp_path / "reindented.json"
    reordered = dict(reversed(json.loads(SMOKE.read_text()).items()))  # other key order, other indentation
    reindented.write_text(json.dumps(reordered, indent=7))
    assert reindented.read_bytes() != SMOKE.read_bytes()
    again = store.add([SMOKE, reindented])
    assert [a.outcome for a in again] == ["present", "present"]
    assert again[0].key == again[1].key == store.entries[0].key
    assert snapshot(tmp_path / "h") == before  # nothing written


def test_a_pytest_benchmark_storage_tree_is_walked_and_foreign_json_refused(tmp_path):
    # pytest-benchmark's --benchmark-autosave layout: .benchmarks/MACHINE-ID/NNNN_COMMIT_DATE[_uncommited-changes].json
    machine = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    machine.mkdir(parents=True)
    commit = json.loads(SMOKE.read_text())["commit_info"]["id"]
    shutil.copy(SMOKE, machine / f"0001_{commit}_20261127_224346.json")
    shutil.copy(SMOKE_2, machine / f"0002_{commit}_20261127_231000.json")
    (machine / "0003_plain_pytest_benchmark.json").write_text(json.dumps(
        {"machine_info": {"node": "x"}, "commit_info": {}, "benchmarks": [], "datetime": "2026", "version": "5.2"}))
    (machine / "0004_broken.json").write_text("{not json")
    (machine / "notes.txt").write_text("not a json file, not looked at")
    store = HistoryStore(tmp_path / "h", create=True)
    outcomes = {Path(a.source).name: a for a in store.add([tmp_path / ".benchmarks"])}
    assert set(outcomes) == {"0001_" + commit + "_20261127_224346.json", "0002_" + commit + "_20261127_231000.json",
                             "0003_plain_pytest_benchmark.json", "0004_broken.json"}
    assert [outcomes[n].outcome for n in sorted(outcomes)] == ["added", "added", "refused", "refused"]
    assert "no vitcnn section" in outcomes["0003_plain_pytest_benchmark.json"].reason
    assert "0004_broken.json" in outcomes["0004_broken.json"].reason
    assert len(HistoryStore(tmp_path / "h").entries) == 2


def test_a_file_killed_between_its_two_writes_is_completed_by_the_next_add(tmp_path):
    # add writes the run, then the index: a run file with no index entry is what an interrupted add leaves
    store = HistoryStore(tmp_path / "h", create=True)
    key = content_key(json.loads(SMOKE.read_text()))
    shutil.copy(SMOKE, tmp_path / "h" / RUNS / f"{key}.json")
    assert store.add([SMOKE])[0].outcome == "added"
    assert [e.key for e in HistoryStore(tmp_path / "h").entries] == [key]


def test_runs_come_oldest_commit_first_whatever_the_committers_time_zone(tmp_path):
    # 10:00+02:00 is 08:00 UTC: before 09:00+00:00, although it sorts after it as a string
    store = HistoryStore(tmp_path / "h", create=True)
    later = tiny_run(tmp_path / "later.json", "2026-01-01T09:00:00+00:00")
    earlier = tiny_run(tmp_path / "earlier.json", "2026-01-01T10:00:00+02:00")
    store.add([later, earlier])
    assert [Path(e.source).name for e, _ in HistoryStore(tmp_path / "h").runs()] == ["earlier.json", "later.json"]


# --------------------------------------------------------------------------------------------- refused stores


@pytest.fixture
def stored(tmp_path) -> Path:
    root = tmp_path / "h"
    HistoryStore(root, create=True).add([SMOKE, SMOKE_2])
    return root


@pytest.mark.parametrize("damage", ["index not json", "index of another format", "index entry malformed",
                                    "indexed run file missing"])
def test_a_damaged_store_is_refused_and_never_rewritten(stored, damage):
    opened = HistoryStore(stored)  # before the damage, as a long-lived process would hold it
    index = stored / INDEX
    data = json.loads(index.read_text())
    if damage == "index not json":
        index.write_text(index.read_text()[:-20])
    elif damage == "index of another format":
        index.write_text(json.dumps({**data, "vitcnn_history": 99}))
    elif damage == "index entry malformed":
        data["runs"][0]["surprise"] = 1
        index.write_text(json.dumps(data))
    else:
        (stored / RUNS / f"{data['runs'][0]['key']}.json").unlink()
    before = snapshot(stored)
    for create in (False, True):
        with pytest.raises(StoreError, match="refused"):
            HistoryStore(stored, create=create)
    # an add through the instance opened before re-reads the index under the lock and stops too
    with pytest.raises(StoreError, match="refused"):
        opened.add([FIRST_FORMAT])
    assert snapshot(stored) == before


def test_an_edited_stored_run_is_refused_on_load_and_left_as_it_is(stored):
    store = HistoryStore(stored)
    entry = store.entries[0]
    path = store.path_of(entry)
    data = json.loads(path.read_text())
    data["benchmarks"][0]["stats"]["data"][0] *= 0.5  # someone "fixed" a sample
    path.write_text(json.dumps(data, indent=2))
    before = snapshot(stored)
    with pytest.raises(StoreError, match=f"does not match its key {entry.key}"):
        store.load(entry)
    with pytest.raises(StoreError):
        list(store.runs())
    assert snapshot(stored) == before


def test_a_non_empty_directory_that_is_not_a_store_is_refused(tmp_path):
    (tmp_path / "results.csv").write_text("a,b\n")
    with pytest.raises(StoreError, match="not empty"):
        HistoryStore(tmp_path, create=True)
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]
    with pytest.raises(StoreError, match="no history here"):
        HistoryStore(tmp_path / "absent")
    assert not (tmp_path / "absent").exists()
    # an empty directory (e.g. made by the CI beforehand) becomes a store
    (tmp_path / "empty").mkdir()
    assert HistoryStore(tmp_path / "empty", create=True).entries == []


# ----------------------------------------------------------------------------------------------------- the lock


def test_two_concurrent_adds_lose_no_entry(tmp_path):
    """Two stores opened on one directory (as two processes would) add 8 runs each at the same moment: each add
    must re-read the index under the lock, or the second writer's index drops the first one's entries."""
    root = tmp_path / "h"
    HistoryStore(root, create=True)
    batches = [[tiny_run(tmp_path / f"{t}-{i}.json", f"2026-01-0{t + 1}T00:00:{i:02d}") for i in range(8)]
               for t in range(2)]
    stores = [HistoryStore(root) for _ in batches]  # both see the empty index
    start = threading.Barrier(len(batches))
    errors: list[BaseException] = []

    def add(store: HistoryStore, paths: list[Path]) -> None:
        try:
            start.wait()
            assert all(a.outcome == "added" for a in store.add(paths))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=add, args=pair) for pair in zip(stores, batches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    final = HistoryStore(root)
    assert len(final.entries) == 16 and len(final.keys()) == 16
    assert {p.name for p in (root / RUNS).iterdir()} == {f"{k}.json" for k in final.keys()}
