"""Robust attribution alignment (Zeng et al. 2021), a reconstruction: a network whose
explanation is an extra output, a map up-sampled from a convolutional layer, trained to align
with the saliency maps of a frozen PGD-L2-trained model.

Only the supplement and the abstract are public, and no code: the abstract says the map is
"up-sampled from the last convolutional layer" and aligned with a PGD-trained model's saliency.
Every other choice here is ours, and a parameter:

- **the map** (``explanation``): the mean over channels of the rectified output of one
  ``nn.Conv2d`` of the network (``layer``: its index among the network's convolutions, -1 the
  last), bilinearly up-sampled to the input's size. It needs no parameters beyond the
  network's own, so any architecture of ``robinterp.models`` can carry it, and it costs one
  forward pass (a gradient map costs a forward and a backward pass);
- **the target**: the absolute input gradient of the true-class logit of the teacher, summed
  over channels, on the clean batch (Simonyan et al.'s saliency, the supplement's "vanilla
  saliency"); the teacher comes from the model cache like any model, trained by ``pgd_at`` in
  L2 on the student's data, architecture, seed and schedule;
- **the loss**: CE + ``weight`` x (1 - cosine(map, target)) per image (``alignment_loss``
  "cosine", scale-free), or the mean squared difference of the two maps each divided by its
  maximum ("mse").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from captum.attr import Saliency
from torch import nn

from robinterp import RobinterpError
from robinterp.device import on_model_device
from robinterp.methods import LossOutput, Method
from robinterp.methods._teacher import frozen_teacher, teacher_dependence
from robinterp.models import eval_mode
from robinterp.settings.choices import ALIGNMENT_LOSSES
from robinterp.settings.methods import AttributionAlignmentParams
from robinterp.settings.teachers import alignment_teacher


def conv_layer(model: nn.Module, index: int) -> nn.Conv2d:
    """The network's ``index``-th ``nn.Conv2d`` (in module order; negative counts from the end)."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not -len(convs) <= index < len(convs):
        raise RobinterpError(f"layer {index} is out of range: the network has {len(convs)} convolutions")
    return convs[index]


def forward_with_map(model: nn.Module, x: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, map): one forward pass; the map is (N, 1, H, W), the channel mean of the rectified
    output of the ``layer``-th convolution, bilinearly up-sampled to the input's H x W."""
    captured: list[torch.Tensor] = []
    handle = conv_layer(model, layer).register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        logits = model(x)
    finally:
        handle.remove()
    features = F.relu(captured[0]).mean(1, keepdim=True)
    return logits, F.interpolate(features, size=x.shape[-2:], mode="bilinear", align_corners=False)


@on_model_device
@torch.no_grad()
def explanation(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None, *, layer: int = -1
) -> torch.Tensor:
    """The network's own explanation of ``x``, shaped like ``x`` (the map repeated over channels),
    in eval mode. It does not depend on ``target`` (the map is class-agnostic, as the abstract's
    single extra output); the argument keeps the signature of ``robinterp.explain``."""
    with eval_mode(model):
        _, heat = forward_with_map(model, x, layer)
    return heat.expand_as(x).clone()


def teacher_saliency(teacher: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|d logit_y / d x| of the frozen teacher, summed over channels: (N, 1, H, W)."""
    with eval_mode(teacher), torch.enable_grad():
        grad = Saliency(teacher).attribute(x.detach().clone().requires_grad_(True), target=y, abs=True)
    return grad.detach().sum(1, keepdim=True)


def misalignment(heat: torch.Tensor, target: torch.Tensor, how: str) -> torch.Tensor:
    """Mean over images of how far each map is from its target (0 when they agree up to scale for
    "cosine", when equal after division by their maxima for "mse")."""
    a, b = heat.flatten(1), target.flatten(1)
    if how == "cosine":
        return (1 - F.cosine_similarity(a, b, dim=1, eps=1e-12)).mean()
    if how == "mse":
        return (
            (a / a.amax(1, keepdim=True).clamp_min(1e-12) - b / b.amax(1, keepdim=True).clamp_min(1e-12)) ** 2
        ).mean()
    raise RobinterpError(f"alignment_loss must be one of {ALIGNMENT_LOSSES}, got {how!r}")


def teacher_spec(spec: Any) -> Any:
    """The teacher's training spec: the student's, trained by ``pgd_at`` in L2."""
    method, params, epochs = alignment_teacher(dict(spec.method_params), spec.epochs)
    return dataclasses.replace(spec, method=method, epochs=epochs, method_params=params)


def prepare(spec: Any, trained: Callable[[Any], nn.Module]) -> dict[str, Any]:
    """The trained PGD-L2 teacher, from the cache (trained there first if needed), frozen."""
    return {"teacher": frozen_teacher(teacher_spec(spec), trained)}


def loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    params: AttributionAlignmentParams,
    *,
    progress: float,
    teacher: nn.Module,
) -> LossOutput:
    """CE(f(x), y) + weight x misalignment(map of f, teacher's saliency)."""
    target = teacher_saliency(teacher, x, y)
    logits, heat = forward_with_map(model, x, params.layer)
    return F.cross_entropy(logits, y) + params.weight * misalignment(heat, target, params.alignment_loss), logits


METHOD = Method(
    "attribution_alignment",
    AttributionAlignmentParams,
    loss,
    "a map output aligned with a frozen PGD-L2 model's saliency (Zeng et al. 2021, reconstructed)",
    prepare=prepare,
    budget_dependence=teacher_dependence(teacher_spec),
)
