"""Chapter "Robust models see differently": a standard vs a PGD-trained model.

Trains the listed methods (by default standard and PGD training) on the same data
for several seeds, measures robust accuracy under FGSM, PGD and MI-FGSM across
epsilon, and computes saliency maps and the image/saliency alignment of Etmann et
al. (2019).
"""

from __future__ import annotations

import pandas as pd
import torch

from robinterp import measures, models
from robinterp.configs.robust_models import RobustModelsConfig
from robinterp.experiments import common
from robinterp.measures.alignment import AlignmentSettings


def train_all(cfg: RobustModelsConfig) -> tuple[common.TrainedModels, pd.DataFrame]:
    """Every (label, seed) model, and a table of their training records."""
    return common.train_grid(common.method_grid(cfg))


def plan(cfg: RobustModelsConfig) -> common.Plan:
    return common.Plan(common.method_grid(cfg), tuple(e.spec for e in cfg.attacks), ("alignment",))


def robust_per_image(cfg: RobustModelsConfig, trained: common.TrainedModels) -> pd.DataFrame:
    """Per test image: right (0 or 100) clean and under each attack at each epsilon, for every
    model (``common.attacked_per_image``), each model's rows cached on their own."""
    return common.attacked_per_image(cfg, trained)


ALIGNMENT_VARIANTS = {"alignment (predicted class)": "alignment", "cosine (predicted class)": "cosine_alignment"}


def alignment_per_image(cfg: RobustModelsConfig, trained: common.TrainedModels) -> pd.DataFrame:
    """Per test image: the image/saliency alignment of Etmann et al. and its cosine form (the
    predicted class's gradient), for every model, each model's rows cached on their own. Tidy:
    method, seed, image, alignment, cosine_alignment."""
    settings = AlignmentSettings(
        cfg.dataset, cfg.alignment_size, tuple(ALIGNMENT_VARIANTS), batch_size=models.EVAL_BATCH_SIZE
    )
    rows = measures.over_models(settings, trained, trained.cache_keys)
    wide = rows.pivot(index=["method", "seed", "image"], columns="variant", values="score")
    order = rows.drop_duplicates(["method", "seed", "image"])[["method", "seed", "image"]]
    wide = order.merge(wide.rename(columns=ALIGNMENT_VARIANTS).reset_index(), on=["method", "seed", "image"])
    return wide[["method", "seed", "image", *ALIGNMENT_VARIANTS.values()]]


def alignment_table(per_image_table: pd.DataFrame) -> pd.DataFrame:
    """Mean image/saliency alignment per method and seed, from the per-image table."""
    return (
        per_image_table.groupby(["method", "seed"], sort=False)[["alignment", "cosine_alignment"]].mean().reset_index()
    )


def saliency_maps(
    cfg: RobustModelsConfig, trained: dict[tuple[str, int], torch.nn.Module], seed: int
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Images, labels and each method's saliency map (|gradient| of the true-label logit)."""
    return common.maps({label: trained[label, seed] for label in cfg.labels()}, cfg.dataset, cfg.saliency_images)
