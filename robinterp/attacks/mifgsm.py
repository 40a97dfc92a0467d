"""MI-FGSM (Dong et al. 2018): iterative FGSM with momentum."""

from __future__ import annotations

import torch
from torch import nn

from robinterp.attacks import Attack
from robinterp.attacks._steps import check, flat_norm, get_norm, iterate
from robinterp.models import eval_mode
from robinterp.settings.attacks import MIFGSMOptions


def mifgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    steps: int = 10,
    decay: float = 1.0,
    step_size: float | None = None,
    seed: int | torch.Tensor | None = None,
    early_stop: bool = False,
) -> torch.Tensor:
    """Momentum iterative FGSM, Dong et al. 2018: g <- mu g + grad / ||grad||_1.

    ``step_size`` defaults to eps / steps, as in the paper. Deterministic (no
    random start): ``seed`` only keeps the signature shared.
    """
    check(eps, steps, step_size, decay)
    unit = get_norm(norm)
    if eps == 0 or steps == 0:
        return x.detach().clone()
    alpha = eps / steps if step_size is None else step_size

    def ascend(x: torch.Tensor, delta: torch.Tensor, grad: torch.Tensor, carried: dict) -> tuple[torch.Tensor, dict]:
        momentum = decay * carried["momentum"] + grad / flat_norm(grad, 1)
        delta = unit.project(delta + unit.step(momentum, alpha), eps)
        return (x + delta).clamp(0, 1) - x, {"momentum": momentum}

    with eval_mode(model):
        return iterate(model, x, y, torch.zeros_like(x), ascend, steps, early_stop, {"momentum": torch.zeros_like(x)})


ATTACK = Attack("mifgsm", mifgsm, __name__, MIFGSMOptions)
