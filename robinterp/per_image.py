"""Measures per test image, so that two models measured on the same images can be paired by
the book's verdict rule (``robinterp.reports.rules``) instead of compared as two averages."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from robinterp.attacks import AttackSpec, correct_under_attack
from robinterp.models import EVAL_BATCH_SIZE
from robinterp.progress import progress


def robust_table(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    bound: Sequence[AttackSpec],
    epsilons: Sequence[float],
    *,
    seed: int,
    early_stop: bool,
    desc: str,
    batch_size: int = EVAL_BATCH_SIZE,
) -> pd.DataFrame:
    """``correct_under_attack`` for every attack over the Linf radii, with a progress line per attack
    (``batch_size`` images attacked at once, a memory bound). Tidy: attack, eps, image, correct (0 or 100)."""
    tables = []
    for attack in progress(bound, desc=desc):
        right = correct_under_attack(
            model, x, y, attack, epsilons, seed=seed, batch_size=batch_size, early_stop=early_stop
        )
        tables += [
            pd.DataFrame(
                {
                    "attack": attack.name,
                    "eps": eps,
                    "image": range(len(x)),
                    "correct": (100 * right[eps].int()).tolist(),
                }
            )
            for eps in epsilons
        ]
    return pd.concat(tables, ignore_index=True)
