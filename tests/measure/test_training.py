"""A training step: what it updates and frees, its optimizer, its precision handling and its references."""

from __future__ import annotations

import pytest
import torch

from vitcnn.measure import reference, training
from vitcnn.zoo import models


def tiny(name: str = "vit_t16", batch: int = 2):
    torch.manual_seed(0)
    model = models.build(name, 64).train()
    x = torch.randn(batch, 3, 64, 64)
    return model, x, training.random_labels(model, x)


def test_the_optimizer_is_fused_where_the_device_has_a_fused_adamw():
    model, x, _ = tiny()
    optimizer = training.optimizer_for(model, x.device)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"] is True  # CPU has one


def test_labels_are_fixed_and_in_range():
    model, x, labels = tiny(batch=8)
    assert labels.shape == (8,) and labels.dtype == torch.int64
    assert 0 <= labels.min() and labels.max() < model.num_classes
    assert torch.equal(labels, training.random_labels(model, x))


def test_a_step_updates_every_weight_frees_gradients_and_keeps_adamw_state():
    model, x, labels = tiny()
    before = [p.detach().clone() for p in model.parameters()]
    step = training.TrainStep(model, model, x, labels, "fp32")
    step()
    assert all(p.grad is None for p in model.parameters())  # between steps only weights and state are held
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters())]
    assert all(changed)
    params = list(model.parameters())
    grad_bytes = training.gradient_bytes(model)
    assert grad_bytes == 4 * sum(p.numel() for p in params)
    # two fp32 moments per weight, plus one step counter per tensor
    assert training.optimizer_state_bytes(step.optimizer) == 2 * grad_bytes + 4 * len(params)


def test_the_loss_falls_when_one_batch_is_trained_on():
    model, x, labels = tiny("convnext_atto")
    step = training.TrainStep(model, model, x, labels, "fp32")
    first = step.loss().item()
    for _ in range(5):
        step()
    assert step.loss().item() < first


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_half_precision_trains_fp32_weights_under_autocast(precision, dtype):
    model, x, labels = tiny("convnext_atto")
    step = training.TrainStep(model, model, x, labels, precision)
    seen = []
    hook = model.stem[0].register_forward_hook(lambda module, args, out: seen.append(out.dtype))  # the stem conv
    result = step.loss_and_gradient()
    hook.remove()
    assert set(seen) == {dtype} and all(p.dtype == torch.float32 for p in model.parameters())
    assert step.scaler.is_enabled() == (precision == "fp16")
    # the returned gradient is unscaled: close to the fp32 gradient of the same weights
    model.zero_grad(set_to_none=True)
    fp32 = training.TrainStep(model, model, x, labels, "fp32").loss_and_gradient()
    assert reference.relative_error(result["gradient"], fp32["gradient"]) < 0.1
    assert reference.relative_error(result["loss"], fp32["loss"]) < 0.02


def test_references_leave_the_model_untouched_and_agree_in_fp32():
    model, x, labels = tiny()
    refs = training.references(model, x, labels, "fp32")
    assert all(p.grad is None for p in model.parameters())
    assert set(refs) == {"eager", "eager_slice", "fp32_math"} and set(refs["eager"]) == {"loss", "gradient"}
    assert refs["eager"]["gradient"].shape == training.probe_parameter(model).shape
    checked = reference.check(refs["eager"], refs, "fp32")
    assert checked["check_max_rel_err"] == 0 and checked["check_fp32_math_rel_err"] < 1e-4


def test_a_wrong_gradient_fails_the_check():
    model, x, labels = tiny()
    refs = training.references(model, x, labels, "fp32")
    wrong = {"loss": refs["eager"]["loss"], "gradient": refs["eager"]["gradient"] * 1.5}
    with pytest.raises(reference.CompiledMismatch, match="differs from eager"):
        reference.check(wrong, refs, "fp32")


def test_the_math_reference_runs_on_a_slice_and_the_compiled_step_meets_it_through_eager(monkeypatch):
    """Math attention on the whole batch would need every image's fp32 scores (~90 GB for ViT-B/16 at 1024 px,
    batch 8): only the setting's own eager step sees the whole batch."""
    model, x, labels = tiny()
    batches = []
    original = training.TrainStep.loss_and_gradient

    def record(step, forward=None):
        batches.append((step.x.shape[0], step.autocast_dtype))
        return original(step, forward)

    monkeypatch.setattr(training.TrainStep, "loss_and_gradient", record)
    refs = training.references(model, x, labels, "bf16")
    assert batches == [(x.shape[0], torch.bfloat16), (reference.SLICE, torch.bfloat16), (reference.SLICE, None)]
    wrong_slice = {**refs, "eager_slice": {**refs["eager_slice"], "gradient": refs["eager_slice"]["gradient"] * 3}}
    with pytest.raises(reference.CompiledMismatch, match="fp32 math-attention reference"):
        reference.check(refs["eager"], wrong_slice, "bf16")
