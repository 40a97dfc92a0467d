"""PGD (Madry et al. 2018), and PGD under a per-element budget (SCAAT's training tool)."""

from __future__ import annotations

import torch
from torch import nn

from robinterp import RobinterpError
from robinterp.attacks import Attack
from robinterp.attacks._steps import Linf, check, get_norm, iterate, seeded_generators
from robinterp.models import eval_mode
from robinterp.settings.attacks import PGDOptions


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    steps: int = 20,
    step_size: float | None = None,
    random_start: bool = True,
    seed: int | torch.Tensor | None = None,
    early_stop: bool = False,
) -> torch.Tensor:
    """Projected gradient descent, Madry et al. 2018.

    ``step_size`` defaults to 2.5 * eps / steps (the rule of Madry's group's
    ``robustness`` library; the paper used 0.01 at eps 0.3 on MNIST). Every
    iterate is projected onto the eps-ball around the clean ``x`` and onto [0, 1].
    """
    check(eps, steps, step_size)
    unit = get_norm(norm)
    if eps == 0 or steps == 0:
        return x.detach().clone()
    alpha = 2.5 * eps / steps if step_size is None else step_size
    return projected_ascent(model, x, y, unit, eps, alpha, steps, random_start, seeded_generators(x, seed), early_stop)


def projected_ascent(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    unit: type,
    eps: float | torch.Tensor,
    alpha: float,
    steps: int,
    random_start: bool,
    generator: torch.Generator | None,
    early_stop: bool = False,
) -> torch.Tensor:
    """PGD's loop: every iterate projected onto the eps-ball around the clean ``x`` and onto
    [0, 1]; ``eps`` is a number, or (Linf) a tensor of per-element radii."""
    x = x.detach()
    # a tensor of radii travels with the images (an early stop drops some of them)
    carried = {"eps": eps} if isinstance(eps, torch.Tensor) else {}

    def ascend(x: torch.Tensor, delta: torch.Tensor, grad: torch.Tensor, carried: dict) -> tuple[torch.Tensor, dict]:
        radius = carried.get("eps", eps)
        delta = unit.project(delta + unit.step(grad, alpha), radius)
        return (x + delta).clamp(0, 1) - x, carried

    with eval_mode(model):
        delta = unit.random_start(x, eps, generator) if random_start else torch.zeros_like(x)
        delta = (x + delta).clamp(0, 1) - x
        return iterate(model, x, y, delta, ascend, steps, early_stop, carried)


def budget_pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    budget: torch.Tensor,
    steps: int,
    step_size: float,
    random_start: bool = True,
    seed: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """PGD under a per-element Linf budget: |x_adv - x| <= budget elementwise, x_adv in [0, 1].

    ``budget`` (>= 0) broadcasts against ``x``: one radius per pixel, per sample or one for
    all. With the same radius everywhere it is ``pgd`` exactly (same draws, same steps).
    Not an attack of the registry: a training-time tool (SCAAT's saliency-shaped budget).
    """
    check(0.0, steps, step_size)
    budget = torch.as_tensor(budget, dtype=x.dtype, device=x.device).expand_as(x)
    if not (torch.isfinite(budget).all() and (budget >= 0).all()):
        raise RobinterpError("the per-element budget must be finite and >= 0 everywhere")
    if steps == 0 or not budget.any():
        return x.detach().clone()
    return projected_ascent(model, x, y, Linf, budget, step_size, steps, random_start, seeded_generators(x, seed))


ATTACK = Attack("pgd", pgd, __name__, PGDOptions)
