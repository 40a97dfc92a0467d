"""A frozen teacher for methods that learn from another model (distillation, attribution
alignment): trained through the model cache like any model, then frozen."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from torch import nn


def frozen_teacher(spec: Any, trained: Callable[[Any], nn.Module]) -> nn.Module:
    """The model ``trained`` gives for ``spec`` (the training loop's cached models: loaded, or
    trained there first), in eval mode and with its weights frozen. The loop passes ``trained``
    in, so that methods know nothing of training."""
    teacher = trained(spec)
    for weight in teacher.parameters():
        weight.requires_grad_(False)
    return teacher.eval()


def teacher_dependence(teacher_spec: Callable[[Any], Any]) -> Callable[[Any], str]:
    """The ``budget_dependence`` of a method that learns from the teacher ``teacher_spec(spec)``:
    a longer run continues a shorter one only when both learn from the same teacher."""

    def dependence(spec: Any) -> str:
        longer = dataclasses.replace(spec, epochs=2 * spec.epochs)
        return "" if teacher_spec(spec) == teacher_spec(longer) else "its teacher trains for the student's epochs"

    return dependence
