"""Background share: per test image, the share of |saliency| that falls off the object
(``robinterp.metrics.background_mass``)."""

from __future__ import annotations

import dataclasses

import pandas as pd
from torch import nn

from robinterp import explain, metrics
from robinterp.measures import Measure, images, register


@dataclasses.dataclass(frozen=True)
class BackgroundSettings:
    """Which images and what counts as background."""

    dataset: str
    """Data set whose test images are explained."""
    size: int | None
    """Test images (a seeded subset; None for all)."""
    threshold: float = 0.1
    """A pixel whose brightest channel is at most this is background."""
    purpose: str = "removal"
    """Which seeded subset of the test set (``robinterp.measures.images.SUBSET_SEEDS``)."""


def rows(model: nn.Module, settings: BackgroundSettings, *, seed: int, model_key: str, name: str) -> pd.DataFrame:
    """Tidy: image, score (a share in [0, 1])."""
    split = images.eval_subset(settings.dataset, settings.size, settings.purpose)
    saliency = explain.explain(model, split.images, split.labels, "saliency")
    share = metrics.background_mass(saliency, split.images, settings.threshold)
    return pd.DataFrame({"image": range(len(split)), "score": share.tolist()})


MEASURE = register(
    Measure("background", "Saliency off the object", BackgroundSettings, rows, __name__, value="score", better="lower")
)
