"""ROAD (Rong et al. 2022): per test image, right (0 or 100) after the most (MoRF) or least
(LeRF) relevant fraction of pixels is replaced by noisy linear imputation; no retraining
(``robinterp.metrics.road``)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pandas as pd
from torch import nn

from robinterp import metrics
from robinterp.measures import Measure, _rankings, images, register


@dataclasses.dataclass(frozen=True)
class RoadSettings:
    """Which images, fractions, imputation noise and rankings."""

    dataset: str
    """Data set whose test images are imputed."""
    size: int | None
    """Test images (a seeded subset; None for all)."""
    fractions: tuple[float, ...]
    """Fractions of pixel positions imputed."""
    noise: float = 0.01
    """Standard deviation of the imputation noise (Rong et al. and Quantus: 0.01)."""
    explainer: str = "saliency"
    """The attribution that ranks the pixels (``robinterp.explain``)."""
    explainer_options: tuple[tuple[str, Any], ...] = ()
    """Its options (e.g. Integrated Gradients' n_steps)."""
    target: str = "true"
    """The class it explains: true or predicted."""
    own_map_layer: str | None = None
    """For an attribution-alignment model, the layer of its own map, ranked too (None: none)."""
    purpose: str = "removal"
    """Which seeded subset of the test set (``robinterp.measures.images.SUBSET_SEEDS``)."""


def rows(model: nn.Module, settings: RoadSettings, *, seed: int, model_key: str, name: str) -> pd.DataFrame:
    """Tidy: ranking, order, fraction, image, correct (0 or 100), and seconds (the ranking's
    attribution and both orders: what ROAD costs for that map)."""
    split = images.eval_subset(settings.dataset, settings.size, settings.purpose)
    percentages = tuple(100 * f for f in settings.fractions)
    tables = []
    found = _rankings.rankings(
        model, settings.explainer, settings.explainer_options, settings.target, settings.own_map_layer
    )
    for ranking in found:
        start, frames = time.perf_counter(), []
        attribution = ranking.attribute(split.images, split.labels)
        for order in metrics.ROAD_ORDERS:
            correct = metrics.road(
                model,
                split.images,
                split.labels,
                attribution,
                percentages,
                order=order,
                noise=settings.noise,
                seed=seed,
            )
            frame = pd.DataFrame((100 * correct.int()).numpy(), index=list(settings.fractions)).stack()
            frames.append(frame.rename_axis(["fraction", "image"]).rename("correct").reset_index().assign(order=order))
        tables.append(pd.concat(frames).assign(ranking=ranking.name, seconds=time.perf_counter() - start))
    return pd.concat(tables, ignore_index=True)[["ranking", "order", "fraction", "image", "correct", "seconds"]]


MEASURE = register(Measure("road", "ROAD", RoadSettings, rows, __name__))
