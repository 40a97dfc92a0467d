"""PGD adversarial training (Madry et al. 2018): cross-entropy on PGD samples only."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robinterp.attacks.pgd import pgd
from robinterp.methods import LossOutput, Method
from robinterp.methods._modes import examples_model
from robinterp.methods._schedules import ramped, warmup_dependence
from robinterp.settings.methods import PGDATParams


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
