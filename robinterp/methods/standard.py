"""Standard training: cross-entropy on clean inputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robinterp.methods import LossOutput, Method, budget_free
from robinterp.settings.methods import StandardParams


def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: StandardParams, *, progress: float) -> LossOutput:
    """Cross-entropy on clean inputs."""
    logits = model(x)
    return F.cross_entropy(logits, y), logits


METHOD = Method("standard", StandardParams, loss, "cross-entropy on clean inputs", budget_dependence=budget_free)
