"""Merging shard runs: the union is an ordinary run (compare, baseline save, report), and every refusal."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests import factories
from vitcnn.__main__ import main
from vitcnn.runfile import load_run, parse_run
from vitcnn.scale import merge, shard

SELECTION = [factories.setting(m, r, b, compile_mode=c) for m in ("vit_t16", "convnext_atto")
             for r in (64, 128) for b in (1, 2) for c in ("eager", "default")]
UNIT_COST = lambda s: 1.0  # noqa: E731


def shard_runs(count: int = 3, statuses: dict | None = None, fingerprint: dict | None = None) -> list[dict]:
    """The JSON of each shard of SELECTION, as the plugin writes it (samples differ per setting)."""
    statuses = statuses or {}
    runs = []
    for index, part in enumerate(shard.partition(SELECTION, count, UNIT_COST), start=1):
        spec = shard.ShardSpec(index, count, "option")
        results = [factories.result(s, samples=[0.01 + 0.001 * i + 0.0001 * n for n in range(12)],
                                    status=statuses.get(s.id, "ok"), reason=statuses.get(s.id) and "forced")
                   for i, s in enumerate(part)]
        data = factories.run_json(results, fingerprint)
        data["machine_info"]["node"] = f"node-{index}"
        data["vitcnn"]["shard"] = shard.record(spec, SELECTION, part)
        runs.append(data)
    return runs


def write(tmp_path: Path, runs: list[dict]) -> list[Path]:
    paths = []
    for i, data in enumerate(runs, start=1):
        path = tmp_path / f"shard{i}.json"
        path.write_text(json.dumps(data))
        paths.append(path)
    return paths


def runs_of(data: list[dict]):
    """Runs named after their shard index (shard1.json, ...), or their position when they have none."""
    return [parse_run(d, f"shard{d['vitcnn'].get('shard', {}).get('index', i)}.json")
            for i, d in enumerate(data, start=1)]


def test_merge_is_the_union_with_samples_and_statuses_kept():
    oom = SELECTION[3].id
    data = shard_runs(3, statuses={oom: "oom"})
    merged = merge.merge(runs_of(data))
    run = parse_run(merged, "merged")
    assert set(run.results) == {s.id for s in SELECTION}
    assert run.results[oom].status == "oom" and run.results[oom].reason == "forced"
    by_id = {b["extra_info"]["setting_id"]: b for d in data for b in d["benchmarks"]}
    for setting_id, result in run.results.items():
        if setting_id != oom:
            assert result.samples == by_id[setting_id]["stats"]["data"]
    assert "shard" not in merged["vitcnn"]
    shards = merged["vitcnn"]["shards"]
    assert shards["count"] == 3 and shards["missing"] == [] and shards["selection_size"] == len(SELECTION)
    assert [m["node"] for m in shards["merged"]] == ["node-1", "node-2", "node-3"]  # host names may differ


def test_merge_ignores_the_order_shards_are_given_in():
    data = shard_runs(3)
    assert merge.merge(runs_of(data)) == merge.merge(runs_of(data[::-1]))


def test_merged_file_works_with_compare_baseline_save_and_report(tmp_path):
    out = tmp_path / "merged.json"
    assert main(["merge", "-o", str(out), *map(str, write(tmp_path, shard_runs(2)))]) == 0
    assert set(load_run(out).results) == {s.id for s in SELECTION}
    baselines = tmp_path / "baselines"
    assert main(["baseline", "save", str(out), "--dir", str(baselines)]) == 0
    stored = next(baselines.glob("*.json"))
    assert main(["compare", str(stored), str(out)]) == 0
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "report.md").exists()


# ------------------------------------------------------------------------------------------------------ refusals

def refused(runs: list[dict], partial: bool = False) -> str:
    with pytest.raises(merge.MergeError) as info:
        merge.merge(runs_of(runs), partial=partial)
    return str(info.value)


def test_refuses_shards_of_different_machines_or_software_listing_the_fields():
    data = shard_runs(2)
    data[1]["machine_info"]["vitcnn_fingerprint"]["torch"] = "2.99.0"
    data[1]["machine_info"]["vitcnn_fingerprint"]["cpu_model"] = "Other CPU"
    message = refused(data)
    assert "'torch' differs: shard1.json='2.15.0' shard2.json='2.99.0'" in message
    assert "'cpu_model' differs" in message


def test_accepts_different_host_names_and_pythons():
    data = shard_runs(2)
    data[1]["machine_info"]["vitcnn_fingerprint"]["python"] = "3.12.0"
    data[1]["machine_info"]["node"] = "elsewhere"
    assert len(parse_run(merge.merge(runs_of(data))).results) == len(SELECTION)


def test_refuses_cpu_shards_of_different_thread_counts():
    data = shard_runs(2)
    data[1]["machine_info"]["vitcnn_fingerprint"]["torch_threads"] = 1
    assert "'torch_threads' differs" in refused(data)


def test_refuses_shards_of_an_amx_and_a_non_amx_machine():
    data = shard_runs(2, fingerprint=factories.amx_machine())
    data[1]["machine_info"]["vitcnn_fingerprint"] = factories.non_amx_machine()
    message = refused(data)
    assert "'cpu_features' differs" in message and "'cpu_model_number' differs" in message


def test_refuses_an_older_fingerprint_among_complete_ones():
    data = shard_runs(2)
    data[1]["machine_info"]["vitcnn_fingerprint"] = dict(factories.LEGACY_CPU_FINGERPRINT)
    assert "identity incomplete" in refused(data)


def test_merges_shards_that_all_have_an_older_fingerprint():
    data = shard_runs(2, fingerprint=factories.LEGACY_CPU_FINGERPRINT)
    assert len(parse_run(merge.merge(runs_of(data))).results) == len(SELECTION)


def test_refuses_gpu_shards_of_different_drivers():
    data = shard_runs(2, fingerprint=factories.GPU_FINGERPRINT)
    data[0]["machine_info"]["vitcnn_fingerprint"]["driver"] = "575.0"
    assert "'driver' differs" in refused(data)


def test_refuses_shards_of_different_commits():
    data = shard_runs(2)
    data[0]["commit_info"] = {"id": "aaaa"}
    data[1]["commit_info"] = {"id": "bbbb"}
    assert "commit differs" in refused(data)


def test_merges_shards_of_different_commits_that_measured_the_same_code():
    """The cpu profile's case: a commit landed between shards; the measured files were the same, so they merge, and
    each shard's commit is kept in vitcnn.shards."""
    data = shard_runs(2)
    for d, commit in zip(data, ("aaaa", "bbbb")):
        d["commit_info"] = {"id": commit}
        d["vitcnn"]["code"] = {"commit": commit, "dirty": False, "measured_sha256": "same"}
    merged = merge.merge(runs_of(data))
    assert [m["commit"] for m in merged["vitcnn"]["shards"]["merged"]] == ["aaaa", "bbbb"]


def test_refuses_shards_whose_measured_code_differs_even_at_one_commit():
    """A dirty tree edited between shards names one commit but measured different code."""
    data = shard_runs(2)
    for d, digest in zip(data, ("one", "two")):
        d["commit_info"] = {"id": "aaaa", "dirty": True}
        d["vitcnn"]["code"] = {"commit": "aaaa", "dirty": True, "measured_sha256": digest}
    assert "measured code differs" in refused(data)


def test_refuses_a_missing_shard_unless_partial():
    data = shard_runs(3)
    assert "missing shard(s) 2 of 3" in refused([data[0], data[2]])
    merged = merge.merge(runs_of([data[0], data[2]]), partial=True)
    assert merged["vitcnn"]["shards"]["missing"] == [2]
    assert set(parse_run(merged).results) == set(data[0]["vitcnn"]["shard"]["ids"]) | set(data[2]["vitcnn"]["shard"]["ids"])


def test_refuses_a_shard_given_twice():
    data = shard_runs(2)
    assert "shard 1/2 given more than once" in refused([data[0], copy.deepcopy(data[0]), data[1]])


def test_refuses_shards_of_different_selections():
    two, three = shard_runs(2), shard_runs(3)
    message = refused([two[0], three[1], three[2]])
    assert "different selections: count differs" in message
    other = shard_runs(2)
    other[1]["vitcnn"]["shard"]["selection_sha256"] = "0" * 64
    assert "selection_sha256 differs" in refused(other)
    profile = shard_runs(2)
    profile[1]["vitcnn"]["profile"] = "blog"
    assert "different profiles" in refused(profile)


def _drop_an_id(data: list[dict]) -> None:
    data[0]["vitcnn"]["shard"]["ids"].pop()  # shard 1 no longer lists one of its settings


def _list_an_id_twice(data: list[dict]) -> None:
    data[1]["vitcnn"]["shard"]["ids"].append(data[0]["vitcnn"]["shard"]["ids"][0])  # shard 2 lists one of shard 1's


@pytest.mark.parametrize("change", [_drop_an_id, _list_an_id_twice], ids=["an id dropped", "an id listed twice"])
def test_refuses_shards_whose_settings_do_not_add_up_to_the_selection(change):
    data = shard_runs(2)
    assert len(parse_run(merge.merge(runs_of(data))).results) == len(SELECTION)  # as written, they merge
    change(data)
    assert "do not add up to their selection" in refused(data)


def test_refuses_duplicate_settings():
    data = shard_runs(2)
    stray = factories.result(next(s for s in SELECTION if s.id in data[0]["vitcnn"]["shard"]["ids"]))
    data[1]["benchmarks"].append(stray["benchmark"])
    data[1]["vitcnn"]["settings"].append(stray["status_entry"])
    message = refused(data)
    assert "duplicate setting" in message and "is not part of shard 2" in message


def test_refuses_a_run_that_is_not_a_shard():
    data = shard_runs(2)
    del data[1]["vitcnn"]["shard"]
    assert "shard2.json: not a shard run" in refused(data)


# ----------------------------------------------------------------------------------------------------------- CLI

def test_cli_refusal_exits_2_and_lists_the_problem(tmp_path, capsys):
    data = shard_runs(2)
    data[1]["machine_info"]["vitcnn_fingerprint"]["timm"] = "0.9.0"
    out = tmp_path / "out.json"
    assert main(["merge", "-o", str(out), *map(str, write(tmp_path, data))]) == 2
    assert "'timm' differs" in capsys.readouterr().err and not out.exists()


def test_cli_never_replaces_an_existing_output_without_force(tmp_path, capsys):
    paths = write(tmp_path, shard_runs(2))
    out = tmp_path / "out.json"
    out.write_text("precious")
    assert main(["merge", "-o", str(out), *map(str, paths)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err and out.read_text() == "precious"
    assert main(["merge", "-o", str(out), "--force", *map(str, paths)]) == 0
    assert len(load_run(out).results) == len(SELECTION)
    assert main(["merge", "-o", str(paths[0]), "--force", *map(str, paths)]) == 2  # an input is never the output
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind


def test_an_output_that_appears_while_merging_is_not_replaced(tmp_path, monkeypatch):
    paths = write(tmp_path, shard_runs(2))
    out = tmp_path / "out.json"
    real_merge = merge.merge

    def merge_while_someone_writes_out(runs, partial=False):
        out.write_text("someone else's")  # after merge_files looked: OUT did not exist yet
        return real_merge(runs, partial=partial)

    monkeypatch.setattr(merge, "merge", merge_while_someone_writes_out)
    with pytest.raises(FileExistsError):
        merge.merge_files(paths, out)
    assert out.read_text() == "someone else's" and not list(tmp_path.glob(".*.tmp"))
