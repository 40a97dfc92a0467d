"""Defensive distillation (Papernot et al. 2016): a teacher trained with its softmax at a high
temperature T, then a student of the same architecture trained on the teacher's softmax at T,
and evaluated at T = 1 (its raw logits).

Two units: ``temperature_ce`` trains the teacher (cross-entropy of softmax(z / T)); ``distillation``
trains the student and prepares its teacher once per run, through the model cache like any model
(same data, architecture, seed and optimiser as the student, trained by ``temperature_ce`` at the
student's T for ``teacher_epochs``). The student's loss is the cross-entropy between the
teacher's and its own softmax at T, as Papernot et al.; Hinton et al.'s T^2 scaling of the soft
loss is not part of defensive distillation and is left out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robinterp.methods import LossOutput, Method, budget_free
from robinterp.methods._teacher import frozen_teacher, teacher_dependence
from robinterp.models import eval_mode
from robinterp.settings.methods import DistillationParams, TemperatureParams


def soft_targets(teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The teacher's softmax at T: rows sum to one and flatten towards uniform as T grows."""
    return F.softmax(teacher_logits / temperature, dim=1)


def temperature_ce(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: TemperatureParams, *, progress: float
) -> LossOutput:
    """Cross-entropy of softmax(z / T) (the teacher of defensive distillation)."""
    logits = model(x)
    return F.cross_entropy(logits / params.temperature, y), logits


def teacher_spec(spec: Any) -> Any:
    """The teacher's training spec: the student's, trained by ``temperature_ce`` at its T."""
    params = dict(spec.method_params)
    epochs = params["teacher_epochs"] if params["teacher_epochs"] is not None else spec.epochs
    return dataclasses.replace(
        spec, method="temperature_ce", epochs=epochs, method_params=(("temperature", params["temperature"]),)
    )


def prepare(spec: Any, trained: Callable[[Any], nn.Module]) -> dict[str, Any]:
    """The trained teacher, from the cache (trained there first if needed), frozen."""
    return {"teacher": frozen_teacher(teacher_spec(spec), trained)}


def distillation(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    params: DistillationParams,
    *,
    progress: float,
    teacher: nn.Module,
) -> LossOutput:
    """Cross-entropy between the teacher's softmax at T and the student's softmax at T."""
    with torch.no_grad(), eval_mode(teacher):
        targets = soft_targets(teacher(x), params.temperature)
    logits = model(x)
    return -(targets * F.log_softmax(logits / params.temperature, dim=1)).sum(1).mean(), logits


TEMPERATURE_CE = Method(
    "temperature_ce",
    TemperatureParams,
    temperature_ce,
    "cross-entropy at softmax temperature T (a distillation teacher)",
    budget_dependence=budget_free,
)
DISTILLATION = Method(
    "distillation",
    DistillationParams,
    distillation,
    "defensive distillation from a teacher trained at temperature T (Papernot et al. 2016)",
    prepare=prepare,
    budget_dependence=teacher_dependence(teacher_spec),
)
