"""A training step as practitioners run one, and what it is checked against before it is timed.

The step: forward, cross-entropy on fixed random labels, backward, AdamW step (fused where the device has a fused
kernel, else foreach), gradients freed. Precision as people train: the weights stay fp32 (master weights) and
bf16/fp16 run under autocast, fp16 with a GradScaler so small gradients do not flush to zero; fp32/tf32 use the
same matmul flags as inference. Only the model is compiled (forward and backward, as in inference); the optimizer
runs eagerly, as `model = torch.compile(model)` leaves it.

Gradients are set to None after each step, so between steps only the weights, the optimizer state and the batch
are held: a step's peak is what it adds on top of those (activations, gradients, temporaries).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

from vitcnn.measure.precision import precision_flags
from vitcnn.measure.reference import SLICE
from vitcnn.measure.sdpa import sdpa_context

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # fp32/tf32: no autocast
LEARNING_RATE = 1e-4
MAX_SCALE_BACKOFFS = 24  # GradScaler starts at 2**16: 24 halvings reach 2**-8


def optimizer_for(model: torch.nn.Module, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the model's parameters: the fused kernel where the device type has one, else foreach."""
    params = [p for p in model.parameters() if p.requires_grad]
    if device.type in _get_fused_kernels_supported_devices():
        return torch.optim.AdamW(params, lr=LEARNING_RATE, fused=True)
    return torch.optim.AdamW(params, lr=LEARNING_RATE, foreach=True)


def random_labels(model: torch.nn.Module, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One class label per image, fixed for the whole setting (the same labels for every step and check)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, model.num_classes, (x.shape[0],), generator=generator)
    return labels.to(x.device)


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def gradient_bytes(model: torch.nn.Module) -> int:
    """Bytes of the gradients one backward creates: one fp32 tensor per trainable parameter (master weights)."""
    return tensor_bytes(p for p in model.parameters() if p.requires_grad)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the optimizer's state tensors (AdamW: two moments per parameter and a step count)."""
    return tensor_bytes(v for state in optimizer.state.values() for v in state.values()
                        if isinstance(v, torch.Tensor))


class TrainStep:
    """One training step of `forward` (the compiled model, or the model itself) on a fixed batch and labels."""

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], model: torch.nn.Module,
                 x: torch.Tensor, labels: torch.Tensor, precision: str) -> None:
        self.forward, self.model, self.x, self.labels = forward, model, x, labels
        self.autocast_dtype = AUTOCAST_DTYPES.get(precision)
        self.optimizer = optimizer_for(model, x.device)
        self.scaler = torch.amp.GradScaler(x.device.type, enabled=precision == "fp16")

    def loss(self, forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
             x: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Forward and loss under the setting's autocast (by default: the timed forward on the whole batch)."""
        forward = self.forward if forward is None else forward  # never `or`: a compiled module has no truth value
        x, labels = (self.x, self.labels) if x is None else (x, labels)
        with torch.autocast(x.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            logits = forward(x)
        return F.cross_entropy(logits.float(), labels)

    def loss_and_gradient(self, forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict:
        """Loss and the first parameter's gradient (the stem: it depends on every layer's backward), unscaled;
        gradients are left in place for `apply` (or dropped by `zero_grad`).

        fp16: a scale that overflows some gradient is halved and the backward redone, as GradScaler would skip
        the step and back off, so the checked gradient is a finite one."""
        for _ in range(MAX_SCALE_BACKOFFS):
            loss = self.loss(forward)
            self.scaler.scale(loss).backward()
            if not self.scaler.is_enabled():
                return {"loss": loss.detach(), "gradient": probe_parameter(self.model).grad.detach()}
            scale = self.scaler.get_scale()
            if all(p.grad is None or torch.isfinite(p.grad).all() for p in self.model.parameters()):
                return {"loss": loss.detach(), "gradient": probe_parameter(self.model).grad.detach() / scale}
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.update(scale / 2)
        raise FloatingPointError(f"fp16 gradients overflow at every loss scale down to {self.scaler.get_scale():g}")

    def apply(self) -> None:
        """The optimizer step for the gradients in place, then gradients freed."""
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)

    def eager_twin(self) -> TrainStep:
        """The same step without torch.compile: the model itself, sharing this step's optimizer and scaler (no
        second optimizer state), for the eager twin (twin.py)."""
        twin = copy.copy(self)
        twin.forward = self.model
        return twin

    def __call__(self) -> None:
        """One whole step: forward, loss, backward, optimizer step."""
        self.scaler.scale(self.loss()).backward()
        self.apply()


def probe_parameter(model: torch.nn.Module) -> torch.nn.Parameter:
    return next(p for p in model.parameters() if p.requires_grad)


def references(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor, precision: str) -> dict[str, dict]:
    """Loss and stem gradient of eager steps (no optimizer step), run on a copy so that the model's own gradients
    and optimizer are untouched:

    - "eager": the setting's autocast and SDPA context (which the caller holds) on the whole batch, for the
      compiled first step to be checked against;
    - "fp32_math" and "eager_slice": no autocast, math attention and strict fp32 flags, and the setting's eager
      step, both on the first `SLICE` images, checked against each other. Math attention on the whole
      batch would hold every image's fp32 attention scores (about 90 GB for ViT-B/16 at 1024 px, batch 8) and
      report `oom` for a setting whose own step fits; the compiled step meets it through the eager check.
    """
    twin = copy.deepcopy(model)
    refs = {"eager": TrainStep(twin, twin, x, labels, precision).loss_and_gradient()}
    part, part_labels = x[:SLICE], labels[:SLICE]
    twin.zero_grad(set_to_none=True)
    refs["eager_slice"] = TrainStep(twin, twin, part, part_labels, precision).loss_and_gradient()
    twin.zero_grad(set_to_none=True)
    with precision_flags("fp32"), sdpa_context("math"):
        refs["fp32_math"] = TrainStep(twin, twin, part, part_labels, "fp32").loss_and_gradient()
    del twin
    return refs
