"""Local Lipschitz estimate (Alvarez-Melis and Jaakkola 2018): the largest ratio of the
explanation's change to the input's under Gaussian noise (lower is better)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from robinterp.explanation_quality import Metric
from robinterp.explanation_quality._evaluation import (
    PER_IMAGE,
    Evaluation,
    NoisyChunk,
    given,
    max_or_mean,
    noisy_table,
    normalised,
    prediction_changed,
)


def local_lipschitz(
    evaluation: Evaluation,
    *,
    nr_samples: int = 200,
    perturb_mean: float = 0.0,
    perturb_std: float = 0.1,
    abs: bool = False,
    normalise: bool = True,
    normalise_func_kwargs: dict[str, Any] | None = None,
    return_nan_when_prediction_changes: bool = False,
) -> torch.Tensor:
    """Quantus's LocalLipschitzEstimate (Alvarez-Melis and Jaakkola 2018): max over Gaussian
    noise of ||a(x) - a(x')||_2 / (||x - x'||_2 + 1e-10)."""
    a = normalised(evaluation.attributions, None, normalise, normalise_func_kwargs, abs)

    def ratio(chunk: NoisyChunk) -> torch.Tensor:
        a_noisy = normalised(chunk.attributions, chunk.call, normalise, normalise_func_kwargs, abs)
        x_distance = (evaluation.x.flatten(1)[chunk.image] - chunk.inputs.flatten(1)).norm(dim=1)
        value = (a[chunk.image] - a_noisy).norm(dim=1) / (x_distance + 1e-10)
        if return_nan_when_prediction_changes:
            # LocalLipschitzEstimate's call defaults to softmax=True: argmax of the probabilities
            value = value.masked_fill(prediction_changed(evaluation, chunk, softmax=True), math.nan)
        return value

    table = noisy_table(evaluation, nr_samples, lambda shape: np.random.normal(perturb_mean, perturb_std, shape), ratio)
    return max_or_mean(table, "max", return_nan_when_prediction_changes)


def settings(samples: int, pixels: int, noise: float | None) -> dict[str, Any]:
    """What robinterp changes from Quantus's defaults."""
    return {"nr_samples": samples, "normalise_func_kwargs": PER_IMAGE, **given("perturb_std", noise)}


METRIC = Metric(
    "local_lipschitz",
    local_lipschitz,
    __name__,
    quantus_name="LocalLipschitzEstimate",
    higher_is_better=False,
    settings=settings,
    why="nr_samples lowered from 200; Gaussian noise of sd `noise` (Quantus: 0.1); attributions "
    "normalised per image, not per batch",
)
