"""FGSM (Goodfellow et al. 2015): one signed gradient step of size eps."""

from __future__ import annotations

import torch
from torch import nn

from robinterp.attacks import Attack
from robinterp.attacks._steps import check, get_norm, iterate
from robinterp.models import eval_mode
from robinterp.settings.attacks import FGSMOptions


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    seed: int | torch.Tensor | None = None,
    early_stop: bool = False,
) -> torch.Tensor:
    """Fast gradient (sign) method, Goodfellow et al. 2015: one step of size eps.

    Deterministic: ``seed`` is accepted only so that every attack shares a signature.
    """
    check(eps)
    unit = get_norm(norm)
    if eps == 0:
        return x.detach().clone()

    def ascend(x: torch.Tensor, delta: torch.Tensor, grad: torch.Tensor, carried: dict) -> tuple[torch.Tensor, dict]:
        return (x + unit.project(unit.step(grad, eps), eps)).clamp(0, 1) - x, carried

    with eval_mode(model):
        return iterate(model, x, y, torch.zeros_like(x), ascend, 1, early_stop, {})


ATTACK = Attack("fgsm", fgsm, __name__, FGSMOptions)
