"""`-p tests.flush_denormal`: flush denormal floats to zero in the process (an experiment of
scripts/regimes-experiments.sh: do denormals in random weights make one process slower than its twin?)."""

import torch


def pytest_configure(config) -> None:
    torch.set_flush_denormal(True)
