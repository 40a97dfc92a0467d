"""Complexity (Bhatt et al. 2020): the entropy of the attribution's share per feature (lower is
better: fewer features carry the explanation)."""

from __future__ import annotations

from typing import Any

import torch

from robinterp.explanation_quality import Metric
from robinterp.explanation_quality._evaluation import Evaluation, normalised


def complexity(
    evaluation: Evaluation,
    *,
    abs: bool = True,
    normalise: bool = True,
    normalise_func_kwargs: dict[str, Any] | None = None,
) -> torch.Tensor:
    """Quantus's Complexity (Bhatt et al. 2020): entropy of the attribution's share per feature."""
    a = normalised(evaluation.attributions, None, normalise, normalise_func_kwargs, abs)
    a = a / a.abs().sum(1, keepdim=True)
    return -(a * torch.log(a + 1e-12)).sum(1).double()


def settings(samples: int, pixels: int, noise: float | None) -> dict[str, Any]:
    """Quantus's defaults: nothing changed."""
    return {}


METRIC = Metric(
    "complexity",
    complexity,
    __name__,
    quantus_name="Complexity",
    higher_is_better=False,
    settings=settings,
    why="Quantus's defaults",
)
