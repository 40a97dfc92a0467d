"""Faithfulness correlation (Bhatt et al. 2020): does blackening features with more attribution
lower the target logit more? (higher is better)."""

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
    image_width,
    normalised,
    pearson,
    per_image,
    quantus_draw_order,
    target_logit_drops,
)


def faithfulness_correlation(
    evaluation: Evaluation,
    *,
    nr_runs: int = 100,
    subset_size: int = 224,
    abs: bool = False,
    normalise: bool = True,
    normalise_func_kwargs: dict[str, Any] | None = None,
    perturb_baseline: str = "black",
    return_aggregate: bool = True,
) -> torch.Tensor:
    """Quantus's FaithfulnessCorrelation (Bhatt et al. 2020): Pearson correlation, over runs, of
    the attribution sum of a random feature subset and the target logit's drop when the
    subset is blackened."""
    check_black_baseline(perturb_baseline)
    if return_aggregate:
        raise RobinterpError("scores are per image: faithfulness_correlation needs return_aggregate=False")
    x = evaluation.x
    a = normalised(evaluation.attributions, None, normalise, normalise_func_kwargs, abs)
    a = a.reshape(evaluation.attributions.shape).expand_as(x).flatten(1)  # Quantus broadcasts a over channels
    image, run = quantus_draw_order(len(x), evaluation.quantus_batch_size, nr_runs)
    # np.random.choice without replacement has no batched form with Quantus's stream: the
    # loop is over draws only; model passes and arithmetic are batched below
    subsets = []
    for start in range(0, len(x), evaluation.quantus_batch_size):
        batch = min(evaluation.quantus_batch_size, len(x) - start)
        for _ in range(nr_runs):
            subsets += [np.random.choice(a.shape[1], subset_size, replace=False) for _ in range(batch)]
            # Quantus's get_baseline_dict draws a "uniform" baseline on every perturbation,
            # whichever baseline is used; drawn to stay in step with its stream
            np.random.uniform(0.0, 1.0, size=batch)
    blackened = torch.from_numpy(np.stack(subsets)).to(x.device)
    image_t, run_t = (torch.from_numpy(v).to(x.device) for v in (image, run))
    attribution_sums = per_image(a[image_t[:, None], blackened].sum(1), image_t, run_t, len(x), nr_runs)
    drops = per_image(target_logit_drops(evaluation, image_t, blackened), image_t, run_t, len(x), nr_runs)
    return pearson(attribution_sums, drops)


def settings(samples: int, pixels: int, noise: float | None) -> dict[str, Any]:
    """What robinterp changes from Quantus's defaults."""
    return {
        "nr_runs": samples,
        "subset_size": image_width(pixels),
        "return_aggregate": False,
        "normalise_func_kwargs": PER_IMAGE,
    }


METRIC = Metric(
    "faithfulness_correlation",
    faithfulness_correlation,
    __name__,
    quantus_name="FaithfulnessCorrelation",
    higher_is_better=True,
    settings=settings,
    why="subset_size is one image row's worth of features, the image width: Quantus's 224 is "
    "that on 224x224 ImageNet, but 29% of a 28x28 image; nr_runs lowered from 100; one "
    "score per image",
)
