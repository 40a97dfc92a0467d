"""Max sensitivity (Yeh et al. 2019): the largest change of the explanation under small uniform
noise, relative to the explanation (lower is better)."""

from __future__ import annotations

from typing import Any

import torch

from robinterp.explanation_quality import Metric
from robinterp.explanation_quality._evaluation import Evaluation, given, sensitivity


def max_sensitivity(
    evaluation: Evaluation,
    *,
    nr_samples: int = 200,
    lower_bound: float = 0.2,
    upper_bound: float | None = None,
    abs: bool = False,
    normalise: bool = False,
    normalise_func_kwargs: dict[str, Any] | None = None,
    return_nan_when_prediction_changes: bool = False,
) -> torch.Tensor:
    """Quantus's MaxSensitivity (Yeh et al. 2019)."""
    return sensitivity(
        evaluation,
        "max",
        nr_samples=nr_samples,
        lower_bound=lower_bound,
        upper_bound=upper_bound,
        abs=abs,
        normalise=normalise,
        normalise_func_kwargs=normalise_func_kwargs,
        return_nan_when_prediction_changes=return_nan_when_prediction_changes,
    )


def settings(samples: int, pixels: int, noise: float | None) -> dict[str, Any]:
    """What robinterp changes from Quantus's defaults."""
    return {"nr_samples": samples, **given("lower_bound", noise)}


METRIC = Metric(
    "max_sensitivity",
    max_sensitivity,
    __name__,
    quantus_name="MaxSensitivity",
    higher_is_better=False,
    settings=settings,
    why="nr_samples lowered from 200 to fit the CPU; uniform noise of radius `noise` "
    "(Quantus: 0.2, as large as a stroke's contrast on MNIST)",
)
