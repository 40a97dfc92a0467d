"""Robust accuracy: how an evaluation counts the attacks of ``robinterp.attacks`` over radii.

Kept apart from the attacks because training runs the attacks and never this counting: a
change here recomputes the evaluation tables and retrains no model (cache keys follow the
modules an entry imports, ``robinterp.codehash``).

The count follows AutoAttack and RobustBench: an image is right under attack only if it is
right clean, and with ``early_stop`` (the evaluation default) it is broken if any iterate of
the attack breaks it. Per test image (``correct_under_attack``, tabled by
``robinterp.measures.attack``) so that two models measured on the
same images can be paired by the book's verdict rule (``robinterp.reports.rules``) instead of
compared as two averages.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from robinterp.attacks import AttackSpec
from robinterp.attacks._steps import image_seeds
from robinterp.device import on_model_device
from robinterp.models import EVAL_BATCH_SIZE, predict
from robinterp.progress import progress


@on_model_device
def correct_under_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: AttackSpec,
    epsilons: Sequence[float],
    *,
    norm: str = "linf",
    seed: int = 0,
    batch_size: int = EVAL_BATCH_SIZE,
    early_stop: bool = True,
    desc: str | None = None,
) -> dict[float, torch.Tensor]:
    """Per radius, per image: right both clean and under ``attack`` (as AutoAttack and
    RobustBench count, so never right under attack when wrong clean); ``desc``: a progress line
    over the radii.

    With ``early_stop`` a sweep skips settled work: the images still right are attacked, each
    until its first misclassified iterate, and radii are swept from the smallest up, so an image
    broken at one radius counts as broken at every larger one without another attack (its
    adversarial example lies in every larger ball). Robust accuracy is then never higher than
    without it and never rises with the radius. Without it every radius attacks every image for
    every step and only the last iterate counts (the former evaluation). Each image's random
    start has a seed of its own drawn from ``seed`` (so batches and skips change no image's
    attack); ``batch_size`` images are attacked at once. Radius 0 is the clean prediction in
    either mode: its ball holds only the clean image.
    """
    right = predict(model, x) == y
    seeds = image_seeds(seed, len(x))
    by_radius = {}
    radii = sorted(set(epsilons))
    for eps in radii if desc is None else progress(radii, desc=desc):
        if eps == 0:
            by_radius[eps] = right.clone()
            continue
        attacked = right.nonzero().squeeze(1) if early_stop else torch.arange(len(x), device=x.device)
        still = torch.zeros_like(right)
        for start in range(0, len(attacked), batch_size):
            rows = attacked[start : start + batch_size]
            adversarial = attack(
                model, x[rows], y[rows], eps=eps, norm=norm, seed=seeds[rows.cpu()], early_stop=early_stop
            )
            still[rows] = predict(model, adversarial) == y[rows]
        by_radius[eps] = right & still
        if early_stop:
            right = by_radius[eps]
    return {eps: by_radius[eps] for eps in epsilons}


def robust_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    attacks: Sequence[AttackSpec],
    epsilons: tuple[float, ...],
    norm: str = "linf",
    batch_size: int = EVAL_BATCH_SIZE,
    seed: int = 0,
    early_stop: bool = True,
    desc: str = "attacks",
) -> pd.DataFrame:
    """Accuracy under each attack at each epsilon, as a tidy table.

    ``attacks`` are the bound attacks to run, each at every epsilon, counted by
    ``correct_under_attack``. Columns: attack, norm, eps, accuracy, correct, n; robust
    accuracy never exceeds clean accuracy, and eps = 0 is clean accuracy.
    """
    rows = []
    for attack in progress(attacks, desc=desc):
        right = correct_under_attack(
            model, x, y, attack, epsilons, norm=norm, seed=seed, batch_size=batch_size, early_stop=early_stop
        )
        for eps in epsilons:
            correct = int(right[eps].sum())
            rows.append(
                {
                    "attack": attack.name,
                    "norm": norm,
                    "eps": eps,
                    "accuracy": correct / len(x),
                    "correct": correct,
                    "n": len(x),
                }
            )
    return pd.DataFrame(rows)
