"""Clean accuracy: per test image, right (0 or 100) without attack."""

from __future__ import annotations

import dataclasses

import pandas as pd
from torch import nn

from robinterp.measures import Measure, images, register
from robinterp.models import predict


@dataclasses.dataclass(frozen=True)
class CleanSettings:
    """Which test images."""

    dataset: str
    """Data set whose test images are classified."""
    size: int | None = None
    """Test images (a seeded subset; None for the whole test set)."""
    purpose: str = "attacks"
    """Which seeded subset of the test set (``robinterp.measures.images.SUBSET_SEEDS``)."""


def rows(model: nn.Module, settings: CleanSettings, *, seed: int, model_key: str, name: str) -> pd.DataFrame:
    """Tidy: image, correct (0 or 100)."""
    split = images.eval_subset(settings.dataset, settings.size, settings.purpose)
    right = predict(model, split.images) == split.labels
    return pd.DataFrame({"image": range(len(split)), "correct": (100 * right.int()).tolist()})


MEASURE = register(Measure("clean", "Clean accuracy", CleanSettings, rows, __name__))
