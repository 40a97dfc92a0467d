"""Etmann et al.'s image/saliency alignment: per test image, |<x, g>| / ||g|| with g the input
gradient of a class's logit, or its cosine form (``robinterp.metrics``)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch
from torch import nn

from robinterp import metrics
from robinterp.config import ConfigError
from robinterp.measures import Measure, images, register

VARIANTS = {
    # name -> (scale-free cosine?, the true class's gradient? else the predicted class's)
    "alignment (predicted class)": (False, False),
    "alignment (true class)": (False, True),
    "cosine (predicted class)": (True, False),
    "cosine (true class)": (True, True),
}


@dataclasses.dataclass(frozen=True)
class AlignmentSettings:
    """Which images and which forms of the alignment."""

    dataset: str
    """Data set whose test images are explained."""
    size: int | None
    """Test images (a seeded subset; None for all)."""
    variants: tuple[str, ...] = ("alignment (predicted class)",)
    """Forms, from ``VARIANTS``: the predicted class's is Etmann et al.'s paper, the true class's
    their code's; the cosine divides by ||x||."""
    batch_size: int | None = None
    """Images per gradient (None: all at once); keyed, since kernels may pick another algorithm
    for another batch size and change the last bits."""
    purpose: str = "alignment"
    """Which seeded subset of the test set (``robinterp.measures.images.SUBSET_SEEDS``)."""

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise ConfigError(f"alignment variants must be among {', '.join(VARIANTS)}, got {list(self.variants)}")


def rows(model: nn.Module, settings: AlignmentSettings, *, seed: int, model_key: str, name: str) -> pd.DataFrame:
    """Tidy: variant, image, score."""
    split = images.eval_subset(settings.dataset, settings.size, settings.purpose)
    step = settings.batch_size or max(len(split), 1)
    tables = []
    for variant in settings.variants:
        cosine, true_class = VARIANTS[variant]
        function = metrics.cosine_alignment if cosine else metrics.alignment
        values = torch.cat(
            [
                function(model, split.images[i : i + step], split.labels[i : i + step] if true_class else None)
                for i in range(0, len(split), step)
            ]
        )
        tables.append(pd.DataFrame({"variant": variant, "image": range(len(split)), "score": values.tolist()}))
    return pd.concat(tables, ignore_index=True)


MEASURE = register(Measure("alignment", "Image/saliency alignment", AlignmentSettings, rows, __name__, value="score"))
