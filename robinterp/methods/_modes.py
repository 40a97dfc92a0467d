"""The mode a model is in while a training method makes its examples (no method of its own).

Attacks and saliency maps switch a model to eval mode while they run (``models.eval_mode``):
BatchNorm normalises by its running statistics and dropout is off, so an adversarial or masked
example is made for the network that is evaluated (the choice of Madry's group's `robustness`
library, and this book's default). Many adversarial-training scripts make them in training mode
instead: BatchNorm on the batch's statistics, updating them at every attack step, and dropout
on. ``examples_model`` gives the example-making code the model as the method's parameter asks.
On a network without BatchNorm or dropout (the CPU book's small CNN) both are the same.
"""

from __future__ import annotations

import torch
from torch import nn

from robinterp import RobinterpError
from robinterp.settings.choices import EXAMPLE_MODES


class _HeldInTraining(nn.Module):
    """``model`` that stays in training mode: ``eval()`` and ``train()`` on it change nothing."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def train(self, mode: bool = True) -> _HeldInTraining:
        return self


def examples_model(model: nn.Module, mode: str) -> nn.Module:
    """The model that an attack or a saliency map inside a training loss should be given: itself
    for "eval" (they switch to eval mode), a view of it held in training mode for "train"."""
    if mode == "eval":
        return model
    if mode == "train":
        return _HeldInTraining(model)
    raise RobinterpError(f"example_mode must be one of {', '.join(EXAMPLE_MODES)}, got {mode!r}")
