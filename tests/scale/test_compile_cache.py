"""The compile cache: a real save/restore across processes and inductor cache dirs, and what is never lost."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tests import factories
from tests.pytest_runs import run_benchmarks
from vitcnn import fingerprint
from vitcnn.scale import compile_cache

REPO = Path(__file__).resolve().parents[2]
SCRIPT = textwrap.dedent("""
    import sys, torch
    from vitcnn.scale import compile_cache
    root = sys.argv[1]
    print(compile_cache.load(root, "cpu"))
    f = torch.compile(lambda x: (x * 2).sin() + x.cos(), dynamic=False)
    f(torch.randn(8, 8))
    counters = torch._dynamo.utils.counters["inductor"]
    print("fxgraph", counters["fxgraph_cache_hit"], counters["fxgraph_cache_miss"])
    print(compile_cache.save(root, "cpu"))
""")


@pytest.fixture(autouse=True)
def empty_local_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """In this process, inductor's local cache directory is an empty one of the test's: save must not pack the
    machine's real cache (the real round trips run in processes of their own)."""
    local = tmp_path / "local-inductor"
    monkeypatch.setattr(compile_cache, "local_cache_dir", lambda: local)
    return local


def _compile_in_fresh_process(root: Path, inductor_dir: Path) -> str:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(inductor_dir), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(root)], env=env, capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.skipif(not compile_cache.supported(), reason="this torch has no save/load_cache_artifacts")
def test_a_fresh_inductor_cache_is_warmed_from_the_store(tmp_path):
    """Saved by one process, loaded by the next (another empty inductor cache dir): inductor then finds the graph.
    How many artifacts one graph makes is torch's business (it changes between releases): only that some were
    saved, and that all of them were loaded."""
    store = tmp_path / "store"
    first = _compile_in_fresh_process(store, tmp_path / "inductor-a")
    assert "nothing stored" in first and "fxgraph 0 1" in first  # a cold start: inductor compiled the graph
    saved = re.search(r"saved (\d+) artifacts", first)
    assert saved and int(saved[1]) >= 1, first
    assert re.search(r"packed \d+ files", first), first
    built = {p.relative_to(tmp_path / "inductor-a") for p in (tmp_path / "inductor-a").rglob("*.so")}
    assert built  # the C++ kernel the CPU compile built
    second = _compile_in_fresh_process(store, tmp_path / "inductor-b")  # another empty inductor cache
    assert f"loaded {saved[1]} artifacts from 1 file(s)" in second, second
    assert "fxgraph 1 0" in second  # inductor found the graph it had never compiled in this cache dir
    assert re.search(r"unpacked \d+ local files from 1 pack", second), second
    # The kernel objects came from the pack and nothing was built again (a rebuild would write new .so files)
    after = {p.relative_to(tmp_path / "inductor-b") for p in (tmp_path / "inductor-b").rglob("*.so")}
    assert after == built
    assert "no new files" in second  # and the second save packs nothing it did not load
    slug_dirs = list(store.iterdir())
    assert len(slug_dirs) == 1 and f"torch{torch.__version__.split('+')[0]}" in slug_dirs[0].name


class FakeInfo:
    def __init__(self, n: int):
        self.artifacts = {"inductor": [f"k{i}" for i in range(n)]}


def test_save_names_files_by_content_and_never_replaces_one(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.compiler, "save_cache_artifacts", lambda: (b"first", FakeInfo(2)))
    assert "saved 2 artifacts" in compile_cache.save(tmp_path, "cpu")
    assert "already stored" in compile_cache.save(tmp_path, "cpu")
    monkeypatch.setattr(torch.compiler, "save_cache_artifacts", lambda: (b"second", FakeInfo(3)))
    compile_cache.save(tmp_path, "cpu")
    files = sorted(compile_cache.slug_dir(tmp_path, "cpu").iterdir())
    assert sorted(f.read_bytes() for f in files) == [b"first", b"second"]  # added, nothing replaced
    monkeypatch.setattr(torch.compiler, "save_cache_artifacts", lambda: None)
    assert "nothing was compiled" in compile_cache.save(tmp_path, "cpu")


def test_an_interrupted_save_leaves_nothing_that_load_would_read(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.compiler, "save_cache_artifacts", lambda: (b"artifacts", FakeInfo(1)))
    directory, seen = compile_cache.slug_dir(tmp_path, "cpu"), []

    def fail_after_writing(fd):
        seen.append(sorted(directory.iterdir()))
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "fsync", fail_after_writing)
    with pytest.raises(OSError, match="disk on fire"):
        compile_cache.save(tmp_path, "cpu")
    monkeypatch.undo()
    [[temp]] = seen  # while written, the file is a temp file that load's *.bin does not match
    assert temp.suffix == ".tmp" and not list(directory.iterdir())


def test_a_damaged_file_is_skipped_and_kept(tmp_path):
    directory = compile_cache.slug_dir(tmp_path, "cpu")
    directory.mkdir(parents=True)
    (directory / "damaged.bin").write_bytes(b"not a cache")
    line = compile_cache.load(tmp_path, "cpu")
    assert "loaded 0 artifacts from 0 file(s)" in line and "skipped (kept): damaged.bin" in line
    assert (directory / "damaged.bin").read_bytes() == b"not a cache"


@pytest.mark.parametrize("change", [{"torch": "2.99.0"}, {"cpu_model_number": 207}, {"cpu_features": ["avx2"]},
                                    {"torch_threads": 1}],
                         ids=["another torch", "another CPU model", "another ISA", "other thread count"])
def test_artifacts_load_only_on_the_machine_and_software_that_saved_them(tmp_path, monkeypatch, change):
    machine = dict(factories.CPU_FINGERPRINT)
    monkeypatch.setattr(fingerprint, "collect", lambda device: dict(machine))
    monkeypatch.setattr(torch.compiler, "save_cache_artifacts", lambda: (b"compiled here", FakeInfo(2)))
    loaded = []
    monkeypatch.setattr(torch.compiler, "load_cache_artifacts", lambda data: loaded.append(data) or FakeInfo(2))
    assert "saved 2 artifacts" in compile_cache.save(tmp_path, "cpu")
    machine.update(change)
    assert "nothing stored" in compile_cache.load(tmp_path, "cpu") and loaded == []  # compiles cold
    machine.update(factories.CPU_FINGERPRINT)
    assert "loaded 2 artifacts from 1 file(s)" in compile_cache.load(tmp_path, "cpu")
    assert loaded == [b"compiled here"]


def test_without_the_torch_api_the_run_is_cold_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.delattr(torch.compiler, "save_cache_artifacts")
    with pytest.warns(compile_cache.CompileCacheWarning, match="compiles cold"):
        line = compile_cache.load(tmp_path, "cpu")
    assert "has no torch.compiler.save_cache_artifacts" in line
    with pytest.warns(compile_cache.CompileCacheWarning):
        compile_cache.save(tmp_path, "cpu")
    assert not any(tmp_path.iterdir())


def test_good_files_load_beside_a_damaged_one_which_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """One damaged file (a shard killed mid-copy, a disk error) costs only its own artifacts: every readable file
    of the store is still loaded, and the damaged one is named and left in place."""
    directory = compile_cache.slug_dir(tmp_path, "cpu")
    directory.mkdir(parents=True)
    for name, data in (("a-good.bin", b"good one"), ("b-damaged.bin", b"garbage"), ("c-good.bin", b"good two"),
                       ("d-foreign.bin", b"other torch")):
        (directory / name).write_bytes(data)
    loaded = []

    def load_cache_artifacts(data: bytes) -> FakeInfo | None:
        if data == b"garbage":
            raise RuntimeError("unpickling stack underflow")
        if data == b"other torch":
            return None  # what torch answers for artifacts it cannot use
        loaded.append(data)
        return FakeInfo(3)

    monkeypatch.setattr(torch.compiler, "load_cache_artifacts", load_cache_artifacts)
    line = compile_cache.load(tmp_path, "cpu")
    assert sorted(loaded) == [b"good one", b"good two"]
    assert "loaded 6 artifacts from 2 file(s)" in line, line
    assert "b-damaged.bin (RuntimeError: unpickling stack underflow)" in line
    assert f"d-foreign.bin (not readable by torch {torch.__version__})" in line
    assert sorted(p.name for p in directory.iterdir()) == ["a-good.bin", "b-damaged.bin", "c-good.bin", "d-foreign.bin"]


COMPILED_CNN = ("--vitcnn-models", "convnext_atto", "--vitcnn-res", "64", "--vitcnn-batch", "1",
                "--vitcnn-compile", "default", "--vitcnn-target-seconds", "0.05", "--vitcnn-warmup-seconds", "0.05",
                "--vitcnn-min-rounds", "3")


def _compile_cache_session(store: Path, inductor_dir: Path, run_json: Path, *extra: str) -> dict:
    """One pytest session of COMPILED_CNN in its own empty inductor cache dir; the setting's extra_info."""
    done = run_benchmarks(*COMPILED_CNN, *extra, f"--vitcnn-compile-cache={store}", f"--benchmark-json={run_json}",
                          env={"TORCHINDUCTOR_CACHE_DIR": str(inductor_dir)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    [bench] = json.loads(run_json.read_text())["benchmarks"]
    return {**bench["extra_info"], "stdout": done.stdout}


@pytest.mark.slow
@pytest.mark.skipif(not compile_cache.supported(), reason="this torch has no save/load_cache_artifacts")
def test_the_pytest_option_stores_a_sessions_artifacts_and_the_next_session_compiles_warm(tmp_path: Path):
    """--vitcnn-compile-cache through pytest, as a fresh CI runner uses it: the first session starts cold and
    saves, the next one (another empty inductor cache, as on another machine of the same kind) loads the store
    before it compiles, and inductor then finds the setting's graph instead of compiling it."""
    store = tmp_path / "store"
    first = _compile_cache_session(store, tmp_path / "inductor-a", tmp_path / "a.json")
    assert "vitcnn: compile cache: nothing stored" in first["stdout"] and first["compile_cache"] == "miss"
    saved = re.search(r"vitcnn: compile cache: saved (\d+) artifacts", first["stdout"])
    assert saved and int(saved[1]) >= 1, first["stdout"][-3000:]
    second = _compile_cache_session(store, tmp_path / "inductor-b", tmp_path / "b.json")
    assert f"vitcnn: compile cache: loaded {saved[1]} artifacts from 1 file(s)" in second["stdout"]
    assert second["compile_cache"] == "hit", second["compile_cache_counters"]


def _local_dir(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_packs_carry_new_files_only_and_leave_locks_behind(tmp_path):
    store = tmp_path / "store"
    local = _local_dir(tmp_path / "local", {"ab/cab.so": b"kernel", "ab/cab.cpp": b"source", "fxgraph/x/y": b"g",
                                           "locks/ab.lock": b"", "ab/tmpx1": b"half-written"})
    first = compile_cache.pack_local_files(store, local)
    assert "packed 3 files" in first
    assert "no new files" in compile_cache.pack_local_files(store, local)  # nothing new: no second pack
    (local / "cd").mkdir()
    (local / "cd/ccd.so").write_bytes(b"another")
    assert "packed 1 files" in compile_cache.pack_local_files(store, local)
    assert len(list(store.glob("inductor-*.tar"))) == 2
    fresh = tmp_path / "fresh"
    line = compile_cache.unpack_local_files(store, fresh)
    assert "unpacked 4 local files from 2 pack(s)" in line
    assert sorted(p.relative_to(fresh).as_posix() for p in fresh.rglob("*") if p.is_file()) == \
        ["ab/cab.cpp", "ab/cab.so", "cd/ccd.so", "fxgraph/x/y"]


def test_equal_files_make_an_equal_pack(tmp_path):
    """Packs are named by content and carry no time or owner: two shards with the same files write one name."""
    files = {"ab/cab.so": b"kernel", "ab/cab.cpp": b"source"}
    one = compile_cache.pack_local_files(tmp_path / "s1", _local_dir(tmp_path / "l1", files))
    two = compile_cache.pack_local_files(tmp_path / "s2", _local_dir(tmp_path / "l2", files))
    assert one.split("into ")[1] == two.split("into ")[1]


def test_unpacking_never_replaces_a_local_file_and_skips_damage_and_escapes(tmp_path):
    import io
    import tarfile

    store = tmp_path / "store"
    compile_cache.pack_local_files(store, _local_dir(tmp_path / "src", {"ab/cab.so": b"from the pack"}))
    (store / "inductor-damaged.tar").write_bytes(b"not a tar")
    escape = io.BytesIO()
    with tarfile.open(fileobj=escape, mode="w") as tar:
        info = tarfile.TarInfo("../outside.so")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    (store / "inductor-escape.tar").write_bytes(escape.getvalue())
    local = _local_dir(tmp_path / "local", {"ab/cab.so": b"already here"})
    line = compile_cache.unpack_local_files(store, local)
    assert (local / "ab/cab.so").read_bytes() == b"already here"
    assert "1 already there" in line and "inductor-damaged.tar" in line and "skipped (kept)" in line
    assert not (tmp_path / "outside.so").exists() and (store / "inductor-damaged.tar").exists()
