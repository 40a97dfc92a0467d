"""Robust accuracy under attack: per test image, right (0 or 100) clean and under each attack at
each radius, counted as AutoAttack and RobustBench do (``robinterp.robustness``)."""

from __future__ import annotations

import dataclasses

import pandas as pd
from torch import nn

from robinterp.attacks import AttackSpec
from robinterp.measures import Measure, images, register, unkeyed
from robinterp.models import EVAL_BATCH_SIZE
from robinterp.robustness import correct_under_attack


@dataclasses.dataclass(frozen=True)
class AttackSettings:
    """Which images, attacks and radii; how an image counts as broken."""

    dataset: str
    """Data set whose test images are attacked."""
    size: int | None
    """Test images attacked (a seeded subset; None for all)."""
    attack: AttackSpec
    """The attack with its options (steps, step size...), run at every radius."""
    epsilons: tuple[float, ...]
    """Radii (0: the clean prediction)."""
    norm: str = "linf"
    """The norm of the radii: linf or l2."""
    early_stop: bool = True
    """An image is broken at its first misclassified iterate, and settled images are skipped
    (AutoAttack's convention); False: only the last iterate counts."""
    purpose: str = "attacks"
    """Which seeded subset of the test set (``robinterp.measures.images.SUBSET_SEEDS``)."""
    batch_size: int = unkeyed(EVAL_BATCH_SIZE)
    """Images attacked at once (a memory bound: each image's random start has its own seed)."""


def rows(model: nn.Module, settings: AttackSettings, *, seed: int, model_key: str, name: str) -> pd.DataFrame:
    """Tidy: norm, eps, image, correct (0 or 100)."""
    split = images.eval_subset(settings.dataset, settings.size, settings.purpose)
    right = correct_under_attack(
        model,
        split.images,
        split.labels,
        settings.attack,
        settings.epsilons,
        norm=settings.norm,
        seed=seed,
        batch_size=settings.batch_size,
        early_stop=settings.early_stop,
        desc=f"{settings.attack.name} on {name}",
    )
    tables = [
        pd.DataFrame(
            {
                "norm": settings.norm,
                "eps": eps,
                "image": range(len(split)),
                "correct": (100 * right[eps].int()).tolist(),
            }
        )
        for eps in settings.epsilons
    ]
    return pd.concat(tables, ignore_index=True)


def code(settings: AttackSettings) -> tuple[str, ...]:
    """The attack's own module keys the rows besides this one (the registry imports it unseen)."""
    return settings.attack.modules


MEASURE = register(Measure("attack", "Robust accuracy", AttackSettings, rows, __name__, code=code))
