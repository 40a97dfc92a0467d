"""FGSM adversarial training (Goodfellow et al. 2015)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robinterp.attacks.fgsm import fgsm
from robinterp.methods import LossOutput, Method
from robinterp.methods._modes import examples_model
from robinterp.methods._schedules import ramped, warmup_dependence
from robinterp.settings.methods import FGSMATParams


def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: FGSMATParams, *, progress: float) -> LossOutput:
    """w CE(x) + (1 - w) CE(FGSM(x)); the logits returned are the adversarial ones."""
    x_adv = fgsm(examples_model(model, params.example_mode), x, y, eps=ramped(params.eps, progress, params.eps_warmup))
    logits_adv = model(x_adv)
    total = (1 - params.clean_weight) * F.cross_entropy(logits_adv, y)
    if params.clean_weight > 0:
        total = total + params.clean_weight * F.cross_entropy(model(x), y)
    return total, logits_adv


METHOD = Method(
    "fgsm_at",
    FGSMATParams,
    loss,
    "FGSM adversarial training (Goodfellow et al. 2015)",
    budget_dependence=warmup_dependence,
)
