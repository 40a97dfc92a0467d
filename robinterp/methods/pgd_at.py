"""PGD adversarial training (Madry et al. 2018): cross-entropy on PGD samples only."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from robinterp.attacks._steps import NORMS
from robinterp.attacks.pgd import pgd
from robinterp.config import Config, param
from robinterp.methods import LossOutput, Method
from robinterp.methods._modes import EXAMPLE_MODES, examples_model
from robinterp.methods._schedules import ramped, warmup_dependence


@dataclasses.dataclass(frozen=True)
class PGDATParams(Config):
    eps: float = param(0.3, low=0, low_open=True)
    """Radius of the training attack (Madry et al.: Linf 0.3 on MNIST, 8/255 on CIFAR-10)."""
    steps: int = param(7, low=1)
    """PGD steps per batch (Madry et al.: 40 on MNIST, 7 on CIFAR-10)."""
    step_size: float | None = param(None, low=0, low_open=True)
    """Step size; None: 2.5 eps / steps (the rule of Madry's group's robustness library;
    the paper: 0.01 on MNIST)."""
    norm: str = param("linf", choices=tuple(NORMS))
    """Norm of the threat model (Madry et al.: Linf)."""
    eps_warmup: float = param(0.0, low=0, high=1)
    """Fraction of training over which eps (and the step) grow from 0 (ours; 0: none, as the paper)."""
    example_mode: str = param("eval", choices=EXAMPLE_MODES)
    """Mode of the model while PGD makes its examples: "eval" (ours, as Madry's `robustness` library: BatchNorm's
    running statistics, no dropout) or "train" (the batch's statistics, updated at every attack
    step, and dropout on). The same on a network with neither, as the CPU book's small CNN."""


def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: PGDATParams, *, progress: float) -> LossOutput:
    """CE(f(PGD(x)), y), PGD with a random start inside the (ramped) ball."""
    eps_now = ramped(params.eps, progress, params.eps_warmup)
    # the step shrinks with the ramped radius; at radius 0 there is nothing to step
    alpha = None if params.step_size is None or eps_now == 0 else params.step_size * eps_now / params.eps
    attacked = examples_model(model, params.example_mode)
    x_adv = pgd(attacked, x, y, eps=eps_now, norm=params.norm, steps=params.steps, step_size=alpha)
    logits = model(x_adv)
    return F.cross_entropy(logits, y), logits


METHOD = Method(
    "pgd_at", PGDATParams, loss, "PGD adversarial training (Madry et al. 2018)", budget_dependence=warmup_dependence
)
