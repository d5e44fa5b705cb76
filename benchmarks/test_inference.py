"""Inference speed, FLOPs and memory of every selected setting (see `--vitcnn-profile` and the axis options)."""


def test_inference(vitcnn_setting, vitcnn_measure):
    outcome = vitcnn_measure(vitcnn_setting)
    assert outcome.status == "ok"
    assert outcome.info["median_s"] > 0
