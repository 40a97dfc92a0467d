"""Chapter "Robust models see differently": a standard vs a PGD-trained model.

Trains the listed methods (by default standard and PGD training) on the same data
for several seeds, measures robust accuracy under FGSM, PGD and MI-FGSM across
epsilon, and computes saliency maps and the image/saliency alignment of Etmann et
al. (2019).
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from robinterp import measures, models
from robinterp.attacks import AttackEntry
from robinterp.config import param
from robinterp.experiments import common
from robinterp.measures.alignment import AlignmentSettings
from robinterp.methods import MethodEntry, method_table


@dataclasses.dataclass(frozen=True)
class RobustModelsConfig(common.ExperimentConfig):
    """Settings of the chapter; the defaults are the `default` profile (CPU, minutes)."""

    train_size: int | None = param(20000, low=1)
    """Training images, a seeded subset; None for all of them."""
    methods: tuple[MethodEntry, ...] = param(
        method_table(
            {
                "standard": {"method": "standard"},
                "PGD-AT": {"method": "pgd_at", "eps": 0.3, "steps": 5, "eps_warmup": 0.25, "epochs": 2.0},
            }
        )
    )
    """The models compared: label -> {method, its parameters, optionally epochs and lr}. PGD
    training: Madry et al.'s MNIST radius 0.3, 5 steps (theirs: 40), eps grown from 0 over
    the first quarter (ours: avoids the collapse seen here), 2 epochs (it needs more)."""
    epochs: float = param(1.0, low=0, low_open=True)
    """Epochs of every method that does not set its own."""
    lr: float = param(1e-3, low=0, low_open=True)
    """Learning rate of every method that does not set its own (Adam)."""
    eval_size: int = param(500, low=1, high=10000)
    """Test images attacked (a seeded subset of the test set)."""
    epsilons: tuple[float, ...] = param((0.0, 0.05, 0.1, 0.2, 0.3), low=0, high=1, min_items=1)
    """Linf radii of the robust-accuracy curves (0 = clean accuracy)."""
    attacks: tuple[AttackEntry, ...] = common.attack_field(
        {"fgsm": {"attack": "fgsm"}, "pgd": {"attack": "pgd", "steps": 20}, "mifgsm": {"attack": "mifgsm", "steps": 10}}
    )
    """The evaluation attacks: label -> {attack: NAME (robinterp.attacks), its options}; every
    robust-accuracy table and figure follows this list. PGD's step is 2.5 eps / steps with a random
    start, MI-FGSM's eps / steps with decay 1 (Dong et al.). A paper's claim about an attack is
    judged under the first listed entry that runs it."""
    saliency_images: int = param(8, low=1, high=32)
    """Test images shown in the saliency-map grid."""
    alignment_size: int = param(1000, low=1, high=10000)
    """Test images over which the image/saliency alignment is averaged."""
    near_zero: float = param(10.0, low=0, low_open=True, high=100)
    """Accuracy (%) at or below which "the standard model falls to near 0%" holds (ours: Madry
    et al. give no number)."""


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
