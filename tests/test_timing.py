"""plain_timer times each call separately; synchronize is a no-op on CPU."""

from __future__ import annotations

import time

import torch

from vitcnn.timing import plain_timer, synchronize


def test_plain_timer_returns_one_sample_per_call():
    calls = []
    samples = plain_timer(lambda: (calls.append(1), time.sleep(0.01)), 3)
    assert len(samples) == len(calls) == 3
    assert all(0.009 < s < 0.5 for s in samples)


def test_synchronize_on_cpu_returns():
    synchronize(torch.device("cpu"))
