"""Average sensitivity (Yeh et al. 2019): the mean change of the explanation under small uniform
noise, relative to the explanation (lower is better). Max sensitivity with the same settings
shares its noisy copies (Quantus draws the same noise for both)."""

from __future__ import annotations

from typing import Any

import torch

from robinterp.explanation_quality import Metric
from robinterp.explanation_quality._evaluation import Evaluation, given, sensitivity


def avg_sensitivity(
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
    """Quantus's AvgSensitivity (Yeh et al. 2019)."""
    return sensitivity(
        evaluation,
        "mean",
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
    "avg_sensitivity",
    avg_sensitivity,
    __name__,
    quantus_name="AvgSensitivity",
    higher_is_better=False,
    settings=settings,
    why="as max_sensitivity",
)
