"""Faithfulness estimate (Alvarez-Melis and Jaakkola 2018): does blackening features in decreasing
attribution lower the target logit in step with their attribution? (higher is better)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from robinterp import RobinterpError
from robinterp.explanation_quality import Metric
from robinterp.explanation_quality._evaluation import (
    PER_IMAGE,
    Evaluation,
    check_black_baseline,
    divisor_at_most,
    image_width,
    normalised,
    pearson,
    target_logit_drops,
)


def faithfulness_estimate(
    evaluation: Evaluation,
    *,
    features_in_step: int = 1,
    abs: bool = False,
    normalise: bool = True,
    normalise_func_kwargs: dict[str, Any] | None = None,
    perturb_baseline: str = "black",
) -> torch.Tensor:
    """Quantus's FaithfulnessEstimate (Alvarez-Melis and Jaakkola 2018): Pearson correlation,
    over steps of ``features_in_step`` features in decreasing attribution, of their
    attribution sum and the target logit's drop when they are blackened."""
    check_black_baseline(perturb_baseline)
    x = evaluation.x
    a = normalised(evaluation.attributions, None, normalise, normalise_func_kwargs, abs)
    a = a.reshape(evaluation.attributions.shape).expand_as(x).flatten(1)
    n_features = a.shape[1]
    if n_features % features_in_step:
        raise RobinterpError(f"features_in_step {features_in_step} must divide the {n_features} features")
    steps = n_features // features_in_step
    # numpy's argsort (not stable) orders tied attributions as Quantus does; torch's may not,
    # and a tie at a step boundary changes which features a step blackens
    order = torch.from_numpy(np.argsort(-a.cpu().numpy(), axis=1)).to(x.device)
    attribution_sums = a.gather(1, order).reshape(len(x), steps, features_in_step).sum(2)
    image = torch.arange(len(x), device=x.device).repeat(steps)
    step = torch.arange(steps, device=x.device).repeat_interleave(len(x))
    blackened = order.reshape(len(x), steps, features_in_step)[image, step]
    # Quantus also draws (and ignores) a "uniform" baseline per step; no score depends on it
    drops = target_logit_drops(evaluation, image, blackened).reshape(steps, len(x)).T
    return pearson(attribution_sums, drops)


def settings(samples: int, pixels: int, noise: float | None) -> dict[str, Any]:
    """What robinterp changes from Quantus's defaults."""
    return {"features_in_step": divisor_at_most(pixels, image_width(pixels)), "normalise_func_kwargs": PER_IMAGE}


METRIC = Metric(
    "faithfulness_estimate",
    faithfulness_estimate,
    __name__,
    quantus_name="FaithfulnessEstimate",
    higher_is_better=True,
    settings=settings,
    why="features_in_step 1 means one forward pass per pixel; one image row's worth (the largest "
    "divisor of the pixels up to the image width) is that many times faster",
)
