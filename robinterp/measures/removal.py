"""The SGT paper's removal test: per test image, right (0 or 100) after the top fraction of
features by |attribution| is replaced with noise, and after a random ranking (the control); no
retraining (``robinterp.metrics.correct_after_removal``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
from torch import nn

from robinterp import explain, metrics
from robinterp.measures import Measure, images, register

RANKINGS = ("saliency", "random")


@dataclasses.dataclass(frozen=True)
class RemovalSettings:
    """Which images, fractions and attribution."""

    dataset: str
    """Data set whose test images are masked."""
    size: int | None
    """Test images (a seeded subset; None for all)."""
    fractions: tuple[float, ...]
    """Fractions of features replaced (0: none)."""
    explainer: str = "saliency"
    """The attribution whose ranking removes features (``robinterp.explain``), of the true class."""
    explainer_options: tuple[tuple[str, Any], ...] = ()
    """Its options (e.g. Integrated Gradients' n_steps)."""
    purpose: str = "removal"
    """Which seeded subset of the test set (``robinterp.measures.images.SUBSET_SEEDS``)."""


def rows(model: nn.Module, settings: RemovalSettings, *, seed: int, model_key: str, name: str) -> pd.DataFrame:
    """Tidy: ranking (the attribution's, called "saliency" whatever the explainer, or random),
    removed, image, correct (0 or 100)."""
    split = images.eval_subset(settings.dataset, settings.size, settings.purpose)
    attribution = explain.explain(
        model, split.images, split.labels, settings.explainer, **dict(settings.explainer_options)
    )
    tables = []
    for ranking in RANKINGS:
        correct = metrics.correct_after_removal(
            model,
            split.images,
            split.labels,
            attribution,
            settings.fractions,
            random_ranking=ranking == "random",
            seed=seed,
        )
        frame = pd.DataFrame((100 * correct.int()).numpy(), index=list(settings.fractions)).stack()
        tables.append(frame.rename_axis(["removed", "image"]).rename("correct").reset_index().assign(ranking=ranking))
    return pd.concat(tables, ignore_index=True)[["ranking", "removed", "image", "correct"]]


MEASURE = register(Measure("removal", "Accuracy after removal", RemovalSettings, rows, __name__, better="lower"))
