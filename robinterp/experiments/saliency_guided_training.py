"""Chapter "Saliency-guided training and robustness" (Guesmi et al. 2024).

Standard training (ST), SGT at two mask fractions, ASGT, FGSM adversarial
training (AT-FGSM) and SGA, trained alike; robust accuracy under FGSM, PGD and
MI-FGSM across epsilon; saliency maps; the SGT paper's faithfulness test; the
paper's numbers beside ours.
"""

from __future__ import annotations

import pandas as pd
import torch

from robinterp import measures
from robinterp.configs.saliency_guided_training import SaliencyGuidedConfig
from robinterp.experiments import common
from robinterp.measures.background import BackgroundSettings
from robinterp.measures.removal import RemovalSettings


def train_all(cfg: SaliencyGuidedConfig) -> tuple[dict[tuple[str, int], torch.nn.Module], pd.DataFrame]:
    return common.train_grid(common.method_grid(cfg))


def plan(cfg: SaliencyGuidedConfig) -> common.Plan:
    return common.Plan(common.method_grid(cfg), tuple(e.spec for e in cfg.attacks), ("removal",))


def robust_per_image(cfg: SaliencyGuidedConfig, trained: common.TrainedModels) -> pd.DataFrame:
    """Per test image: right (0 or 100) clean and under each attack at each epsilon, for every
    model (``common.attacked_per_image``), each model's rows cached on their own."""
    return common.attacked_per_image(cfg, trained)


def map_focus(cfg: SaliencyGuidedConfig, trained: common.TrainedModels) -> pd.DataFrame:
    """Per test image (the faithfulness test's): the share of each model's |saliency| that lies off
    the object (``robinterp.measures.background``), the number by which this chapter judges the
    paper's Figure 6 ("focusing predominantly on the target object with fewer irrelevant
    features"). Tidy: image, background_share, method, seed."""
    settings = BackgroundSettings(cfg.dataset, cfg.faithfulness_size)
    rows = measures.over_models(settings, trained, trained.cache_keys)
    return rows.rename(columns={"score": "background_share"})


def saliency_maps(
    cfg: SaliencyGuidedConfig, trained: dict[tuple[str, int], torch.nn.Module], seed: int
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Images, labels and each method's saliency map (|gradient| of the true-label logit)."""
    return common.maps({label: trained[label, seed] for label in cfg.labels()}, cfg.dataset, cfg.saliency_images)


def faithfulness(cfg: SaliencyGuidedConfig, trained: common.TrainedModels) -> pd.DataFrame:
    """Per test image: right (0 or 100) after removing the top d% features by |saliency|, and
    after a random ranking (the control; ``robinterp.measures.removal``). Tidy: ranking, removed,
    image, correct, method, seed; each model's rows cached on their own."""
    settings = RemovalSettings(cfg.dataset, cfg.faithfulness_size, cfg.removal_fractions)
    return measures.over_models(settings, trained, trained.cache_keys)


def removal_curves(per_image_table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (0 to 1) per method, seed, ranking and removed fraction, from the per-image table."""
    return (
        per_image_table.groupby(["method", "seed", "ranking", "removed"], sort=False)["correct"]
        .mean()
        .div(100)
        .rename("accuracy")
        .reset_index()
    )
