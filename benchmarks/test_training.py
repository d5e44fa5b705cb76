"""Training-step speed, FLOPs and memory of every selected setting with task `train` (`--vitcnn-task train`)."""

import pytest


@pytest.mark.vitcnn_task("train")
def test_training(vitcnn_setting, vitcnn_measure):
    outcome = vitcnn_measure(vitcnn_setting)
    assert outcome.status == "ok"
    assert outcome.info["median_s"] > 0
