"""The malloc policy (vitcnn/measure/allocator.py): fixed thresholds leave a forward pass without page faults, every
mode names the condition a run records, and what it cannot change it says instead of pretending."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from vitcnn import fingerprint
from vitcnn.measure import allocator

FAULTS_PER_CALL = """
import json, resource, sys, torch, timm
from vitcnn.measure import allocator
condition = allocator.apply(sys.argv[1])
torch.manual_seed(0)
model = timm.create_model("test_nfnet").eval()
x = torch.randn(2, 3, 96, 96)
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
with torch.inference_mode():
    for _ in range(10):
        model(x)
    per_block = []
    for _ in range(5):
        start = faults()
        for _ in range(5):
            model(x)
        per_block.append((faults() - start) / 5)
print(json.dumps({"condition": condition, "faults_per_call": per_block}))
"""


def faults_per_call(mode: str) -> dict:
    """A fresh process's minor page faults per forward call of the NF-Net test model, after a warm-up."""
    out = subprocess.run([sys.executable, "-c", FAULTS_PER_CALL, mode], capture_output=True, text=True, check=True,
                         timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the fixed policy is glibc's mallopt")
def test_fixed_thresholds_leave_a_warm_forward_pass_without_page_faults():
    fixed, default = faults_per_call("fixed"), faults_per_call("default")
    assert fixed["condition"] == allocator.FIXED and default["condition"] == allocator.DEFAULT
    # Fixed: the warm calls reuse the heap they touched (a stray fault from a lazily mapped page is not a policy).
    assert sorted(fixed["faults_per_call"])[2] <= 2, fixed
    print(f"faults per call, fixed {fixed['faults_per_call']} vs glibc default {default['faults_per_call']}")


def test_default_leaves_glibc_alone_and_names_it(monkeypatch):
    monkeypatch.setattr(allocator, "_condition", None)
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    assert allocator.apply("default") == allocator.DEFAULT == allocator.condition()


def test_default_after_fixed_in_one_process_says_it_could_not_undo_it(monkeypatch):
    monkeypatch.setattr(allocator, "_condition", allocator.FIXED)
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    assert allocator.apply("default").startswith(allocator.FIXED + "; default asked for")


@pytest.mark.parametrize("preload", ["/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
                                     "libfoo.so:/usr/lib/libtcmalloc_minimal.so.4"])
def test_a_preloaded_allocator_is_recorded_and_left_alone(monkeypatch, preload):
    monkeypatch.setenv("LD_PRELOAD", preload)
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda *_: pytest.fail("mallopt called under a preload"))
    condition = allocator.apply("fixed")
    assert condition.startswith("preloaded lib") and "not changed" in condition


def test_another_libc_is_recorded_and_left_alone(monkeypatch):
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("", ""))
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda *_: pytest.fail("mallopt called without glibc"))
    assert "not changed" in allocator.apply("fixed")


def test_a_refused_mallopt_is_named(monkeypatch):
    class Libc:
        @staticmethod
        def mallopt(param: int, value: int) -> int:
            return 0

    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda *_: Libc)
    assert "refused" in allocator.apply("fixed")


def test_an_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="--vitcnn-malloc must be one of fixed, default"):
        allocator.apply("jemalloc")


def test_two_runs_under_different_policies_are_warned_about_not_silently_compared():
    base = {"device": "cpu", "malloc": allocator.DEFAULT}
    new = {"device": "cpu", "malloc": allocator.FIXED}
    assert fingerprint.condition_changes(base, new) == {"malloc": (allocator.DEFAULT, allocator.FIXED)}
    assert fingerprint.condition_changes(base, dict(base)) == {}
    assert fingerprint.condition_changes({"device": "cpu"}, new) == {}  # an older run records no policy
