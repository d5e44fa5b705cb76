"""Where an A/B session's workers come from (vitcnn/ab/pools.py): fresh forks per setting, or long-lived workers."""

from __future__ import annotations

from vitcnn.ab.pools import Pools
from vitcnn.ab.sides import Side
from vitcnn.workers.checkout import Checkout

ARGS = ["--vitcnn-device", "cpu", "--vitcnn-warmup-seconds", "0.1"]


def _pids(workers) -> dict[str, list[int]]:
    return {name: [w.request("hello")["pid"] for w in workers[name]] for name in "AB"}


def test_fresh_pools_fork_new_processes_for_every_setting(tmp_path):
    pools = Pools((Side("A"), Side("B")), [Checkout(None), Checkout(None)], ARGS, 2, True, tmp_path)
    try:
        hellos = pools.hello()
        assert [len(hellos[n]) for n in "AB"] == [1, 1] and hellos["A"][0]["template_pid"] != hellos["A"][0]["pid"]
        first = pools.take()
        first_pids = _pids(first)
        pools.give_back(first)
        second = pools.take()
        second_pids = _pids(second)
        assert [len(second_pids[n]) for n in "AB"] == [2, 2]
        every = first_pids["A"] + first_pids["B"] + second_pids["A"] + second_pids["B"]
        assert len(set(every)) == 8  # no setting shares a process with another
        pools.give_back(second)
        assert len(_pids(explaining := pools.take(1))["A"]) == 1
        pools.give_back(explaining)
    finally:
        pools.close()


def test_long_lived_pools_give_every_setting_the_same_processes(tmp_path):
    pools = Pools((Side("A"), Side("B")), [Checkout(None), Checkout(None)], ARGS, 2, False, tmp_path)
    try:
        assert [len(h) for h in pools.hello().values()] == [2, 2]
        first = pools.take()
        first_pids = _pids(first)
        pools.give_back(first)
        assert _pids(pools.take()) == first_pids
    finally:
        pools.close()
