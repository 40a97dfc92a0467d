"""Sparseness (Chalasani et al. 2020): the Gini index of the attribution (higher is better)."""

from __future__ import annotations

from typing import Any

import torch

from robinterp.explanation_quality import Metric
from robinterp.explanation_quality._evaluation import Evaluation, normalised


def sparseness(
    evaluation: Evaluation,
    *,
    abs: bool = True,
    normalise: bool = True,
    normalise_func_kwargs: dict[str, Any] | None = None,
) -> torch.Tensor:
    """Quantus's Sparseness (Chalasani et al. 2020): the Gini index of the attribution."""
    a = normalised(evaluation.attributions, None, normalise, normalise_func_kwargs, abs)
    a = (a + 1e-7).sort(1).values
    n = a.shape[1]
    weights = 2 * torch.arange(1, n + 1, dtype=torch.float64, device=a.device) - n - 1
    # Quantus: an int64 x float32 numerator (float64) over a float32 denominator
    return (weights * a.double()).sum(1) / (n * a.sum(1)).double()


def settings(samples: int, pixels: int, noise: float | None) -> dict[str, Any]:
    """Quantus's defaults: nothing changed."""
    return {}


METRIC = Metric(
    "sparseness",
    sparseness,
    __name__,
    quantus_name="Sparseness",
    higher_is_better=True,
    settings=settings,
    why="Quantus's defaults",
)
