"""Measures per test image, so that two models measured on the same images can be paired by
the book's verdict rule (``robinterp.reports.rules``) instead of compared as two averages."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from robinterp.attacks import AttackSpec
from robinterp.models import predict
from robinterp.progress import progress


def correct_under_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: AttackSpec,
    eps: float,
    *,
    norm: str = "linf",
    seed: int = 0,
    batch_size: int = 500,
) -> torch.Tensor:
    """Per image: right both clean and under ``attack`` at radius ``eps``, counted as
    ``attacks.robust_accuracy`` counts (same batches and seeds, so its total equals that table's
    ``correct``)."""
    clean = predict(model, x) == y
    right = []
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        adversarial = attack(model, xb, yb, eps=eps, norm=norm, seed=seed + start)
        right.append(predict(model, adversarial) == yb)
    return clean & torch.cat(right)


def robust_table(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    bound: Sequence[AttackSpec],
    epsilons: Sequence[float],
    *,
    seed: int,
    desc: str,
) -> pd.DataFrame:
    """``correct_under_attack`` for every attack at every Linf radius, with a progress line.
    Tidy: attack, eps, image, correct (0 or 100)."""
    tables = []
    for attack, eps in progress([(a, e) for a in bound for e in epsilons], desc=desc):
        correct = correct_under_attack(model, x, y, attack, eps, seed=seed)
        tables.append(
            pd.DataFrame(
                {"attack": attack.name, "eps": eps, "image": range(len(x)), "correct": (100 * correct.int()).tolist()}
            )
        )
    return pd.concat(tables, ignore_index=True)
