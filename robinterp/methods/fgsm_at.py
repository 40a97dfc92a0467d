"""FGSM adversarial training (Goodfellow et al. 2015)."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from robinterp.attacks.fgsm import fgsm
from robinterp.config import Config, param
from robinterp.methods import LossOutput, Method
from robinterp.methods._modes import EXAMPLE_MODES, examples_model
from robinterp.methods._schedules import ramped, warmup_dependence


@dataclasses.dataclass(frozen=True)
class FGSMATParams(Config):
    eps: float = param(0.3, low=0, low_open=True, high=1)
    """Linf radius of the FGSM step (Goodfellow et al.: 0.25 on MNIST; ours 0.3, MNIST's usual)."""
    clean_weight: float = param(0.5, low=0, high=1)
    """Weight w of the clean cross-entropy: loss = w CE(x) + (1 - w) CE(FGSM(x)); Goodfellow
    et al. use 0.5; 0 trains on adversarial samples only."""
    eps_warmup: float = param(0.0, low=0, high=1)
    """Fraction of training over which eps grows from 0 (0: none, as the paper)."""
    example_mode: str = param("eval", choices=EXAMPLE_MODES)
    """Mode of the model while FGSM makes its examples: "eval" (ours, as Madry's `robustness` library: BatchNorm's
    running statistics, no dropout) or "train" (the batch's statistics, updated at every attack
    step, and dropout on). The same on a network with neither, as the CPU book's small CNN."""


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
