"""Explanation quality: per test image, each listed metric (``robinterp.explanation_quality``, a module each)
(robinterp's batched implementation of Quantus's metrics, tested equal to Quantus, or Quantus's)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
from torch import nn

from robinterp import explanation_quality
from robinterp.measures import Measure, images, register
from robinterp.settings.metrics import MetricEntry, entries


@dataclasses.dataclass(frozen=True)
class QualitySettings:
    """Which images, metrics and explanation."""

    dataset: str
    """Data set whose test images are explained."""
    size: int | None
    """Test images (a seeded subset; None for all)."""
    metrics: tuple[MetricEntry, ...]
    """The metrics scored (label, metric and the settings the entry changes; a name given here is
    its own label)."""
    explainer: str = "integrated_gradients"
    """The explanation scored (``robinterp.explain``; ``random`` is the control)."""
    explainer_options: tuple[tuple[str, Any], ...] = ()
    """Its options (e.g. Integrated Gradients' n_steps)."""
    samples: int = 10
    """Perturbations per image of the sampling metrics."""
    noise: float | None = None
    """Perturbation size of the sensitivity metrics (None: Quantus's)."""
    implementation: str = "robinterp"
    """robinterp (batched) or quantus."""
    images_per_call: int = 512
    """Most images per explainer call (keyed: a noisy explainer draws per call)."""
    within: int | None = None
    """Score only a seeded subset (seed 0) of this many of those images (None: all of them)."""
    purpose: str = "explanation_quality"
    """Which seeded subset of the test set (``robinterp.measures.images.SUBSET_SEEDS``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", entries(self.metrics))


WITHIN_SEED = 0  # the seed of the ``within`` subset (SCAAT's faithfulness images)


def rows(model: nn.Module, settings: QualitySettings, *, seed: int, model_key: str, name: str) -> pd.DataFrame:
    """Tidy: metric (the entry's label), image, score (the metric's unit)."""
    split = images.eval_subset(settings.dataset, settings.size, settings.purpose)
    if settings.within is not None:
        split = split.subset(settings.within, seed=WITHIN_SEED)
    return explanation_quality.scores(
        model,
        split.images,
        split.labels,
        settings.metrics,
        explainer=settings.explainer,
        explainer_options=dict(settings.explainer_options),
        samples=settings.samples,
        noise=settings.noise,
        seed=seed,
        images_per_call=settings.images_per_call,
        implementation=settings.implementation,
    )


MEASURE = register(
    Measure(
        "quality",
        "Explanation quality",
        QualitySettings,
        rows,
        __name__,
        value="score",
        better="per metric",
        code=lambda settings: tuple(
            sorted({m for entry in settings.metrics for m in explanation_quality.spec_modules(entry.spec)})
        ),
    )
)
