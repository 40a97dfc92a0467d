"""A frozen teacher for methods that learn from another model (distillation, attribution
alignment): trained through the model cache like any model, then frozen."""

from __future__ import annotations

from typing import Any

from torch import nn


def frozen_teacher(spec: Any) -> nn.Module:
    """The model trained by ``spec`` (from the cache, trained there first if needed), in eval
    mode and with its weights frozen."""
    from robinterp import train  # the loop imports the registry's modules only by name

    teacher, _ = train.trained_model(spec)
    for weight in teacher.parameters():
        weight.requires_grad_(False)
    return teacher.eval()
