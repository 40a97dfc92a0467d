"""Chapter "Saliency-guided training and robustness" (Guesmi et al. 2024).

Standard training (ST), SGT at two mask fractions, ASGT, FGSM adversarial
training (AT-FGSM) and SGA, trained alike; robust accuracy under FGSM, PGD and
MI-FGSM across epsilon; saliency maps; the SGT paper's faithfulness test; the
paper's numbers beside ours.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from robinterp import measures, train
from robinterp.attacks import AttackEntry
from robinterp.config import ConfigError, param
from robinterp.experiments import common
from robinterp.measures.background import BackgroundSettings
from robinterp.measures.removal import RemovalSettings
from robinterp.methods import MethodEntry, method_table


@dataclasses.dataclass(frozen=True)
class SaliencyGuidedConfig(common.ExperimentConfig):
    """Settings of the chapter; the defaults are the `default` profile (CPU, minutes)."""

    train_size: int | None = param(10000, low=1)
    """Training images, a seeded subset; None for all of them."""
    methods: tuple[MethodEntry, ...] = param(
        method_table(
            {
                "ST": {"method": "standard"},
                "SGT k=0.3": {"method": "sgt", "k": 0.3},
                "SGT k=0.5": {"method": "sgt", "k": 0.5},
                "ASGT": {"method": "asgt", "k": 0.3},
                "AT-FGSM": {"method": "fgsm_at", "eps": 0.3},
                "SGA": {"method": "sga", "k": 0.3},
            }
        )
    )
    """The models compared, in the order of the paper's figures: label -> {method, its parameters}.
    SGT at the paper's two mask fractions (Figure 2); ASGT and SGA at k 0.3 with an FGSM step of
    0.3 inside training (the paper does not give the radius; ours); AT-FGSM on clean and
    adversarial samples, equally weighted: the paper's adversarial examples are "integrated into
    the training dataset" (section 2.1); ``clean_weight: 0`` trains on adversarial samples only."""
    epochs: float = param(1.0, low=0, low_open=True)
    """Epochs for every method (the paper: 20)."""
    batch_size: int = param(128, low=1)
    """Minibatch size (the paper: 128)."""
    optimizer: str = param("adam", choices=tuple(train.OPTIMIZERS))
    """Optimiser (the paper: SGD)."""
    lr: float = param(1e-3, low=0, low_open=True)
    """Learning rate (the paper: 1e-2 with SGD)."""
    eval_size: int = param(250, low=1, high=10000)
    """Test images attacked (a seeded subset of the test set)."""
    epsilons: tuple[float, ...] = param((0.0, 0.1, 0.2, 0.25, 0.3, 0.4), low=0, high=1, min_items=1)
    """Linf radii of the curves; 0.2 and 0.25 are where the paper quotes numbers."""
    attacks: tuple[AttackEntry, ...] = common.attack_field(
        {"fgsm": {"attack": "fgsm"}, "pgd": {"attack": "pgd", "steps": 10}, "mifgsm": {"attack": "mifgsm", "steps": 10}}
    )
    """The evaluation attacks: label -> {attack: NAME (robinterp.attacks), its options}; every
    robust-accuracy table and figure follows this list. PGD's step is 2.5 eps / steps with a random
    start, MI-FGSM's eps / steps with decay 1 (Dong et al.). A paper's claim about an attack is
    judged under the first listed entry that runs it."""
    removal_fractions: tuple[float, ...] = param(
        (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), low=0, high=1, high_open=True, min_items=1
    )
    """Fractions of top-|saliency| features removed in the faithfulness test."""
    faithfulness_size: int = param(500, low=1, high=10000)
    """Test images of the faithfulness test."""
    saliency_images: int = param(6, low=1, high=32)
    """Test images shown in the saliency-map grid."""

    def validate(self) -> None:
        super().validate()
        if not self.epsilons:
            raise ConfigError("epsilons must list at least one value")


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
