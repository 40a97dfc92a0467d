"""Chapter "Robust models see differently": a standard vs a PGD-trained model.

Trains both on the same data for several seeds, measures robust accuracy under
FGSM, PGD and MI-FGSM across epsilon, and computes saliency maps and the
image/saliency alignment of Etmann et al. (2019).
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from robinterp import data, explain, metrics, train
from robinterp.config import ConfigError, param
from robinterp.experiments import common


@dataclasses.dataclass(frozen=True)
class RobustModelsConfig(common.ExperimentConfig):
    """Settings of the chapter; the defaults are the `default` profile (CPU, minutes)."""

    train_size: int | None = param(20000, low=1)
    """Training images, a seeded subset; None for all of them."""
    epochs: float = param(1.0, low=0, low_open=True)
    """Epochs of standard training."""
    adversarial_epochs: float = param(2.0, low=0, low_open=True)
    """Epochs of PGD adversarial training (it needs more than standard training)."""
    batch_size: int = param(128, low=1)
    """Minibatch size for both methods."""
    lr: float = param(1e-3, low=0, low_open=True)
    """Adam learning rate for both methods."""
    train_eps: float = param(0.3, low=0, low_open=True, high=1)
    """Linf radius of PGD adversarial training (Madry et al.'s MNIST value)."""
    train_steps: int = param(5, low=1)
    """PGD steps per training batch."""
    train_step_size: float | None = param(None, low=0, low_open=True)
    """PGD step size in training; None for 2.5 eps / steps (robustness library's rule)."""
    eps_warmup: float = param(0.25, low=0, high=1)
    """Fraction of adversarial training over which eps grows from 0 (avoids collapse)."""
    eval_size: int = param(500, low=1, high=10000)
    """Test images attacked (a seeded subset of the test set)."""
    epsilons: tuple[float, ...] = param((0.0, 0.05, 0.1, 0.2, 0.3), low=0, high=1)
    """Linf radii of the robust-accuracy curves (0 = clean accuracy)."""
    pgd_steps: int = param(20, low=1)
    """PGD steps at evaluation (step size 2.5 eps / steps, random start)."""
    mifgsm_steps: int = param(10, low=1)
    """MI-FGSM steps at evaluation (decay 1.0, step size eps / steps, as Dong et al.)."""
    saliency_images: int = param(8, low=1, high=32)
    """Test images shown in the saliency-map grid."""
    alignment_size: int = param(1000, low=1, high=10000)
    """Test images over which the image/saliency alignment is averaged."""

    def validate(self) -> None:
        super().validate()
        if not self.epsilons:
            raise ConfigError("epsilons must list at least one radius")


METHODS = ("standard", "pgd_at")


def train_spec(cfg: RobustModelsConfig, method: str, seed: int) -> train.TrainSpec:
    """The training spec of one model; it alone keys the model cache."""
    common = dict(dataset=cfg.dataset, train_size=cfg.train_size, model=cfg.model,
                  width=cfg.width, batch_size=cfg.batch_size, optimizer="adam", lr=cfg.lr, seed=seed)
    if method == "standard":
        return train.TrainSpec(method="standard", epochs=cfg.epochs, **common)
    return train.TrainSpec(method="pgd_at", epochs=cfg.adversarial_epochs, **common, method_params=(
        ("eps", cfg.train_eps), ("steps", cfg.train_steps), ("step_size", cfg.train_step_size),
        ("eps_warmup", cfg.eps_warmup)))


def train_all(cfg: RobustModelsConfig) -> tuple[dict[tuple[str, int], torch.nn.Module], pd.DataFrame]:
    """Every (method, seed) model, and a table of their training records."""
    return common.train_grid({(method, seed): train_spec(cfg, method, seed)
                              for seed in cfg.seeds for method in METHODS})


def eval_split(cfg: RobustModelsConfig) -> data.Split:
    """The seeded test subset every model is attacked on (the same images for all)."""
    return data.load(cfg.dataset, "test").subset(cfg.eval_size, seed=12345)


def robust_curves(cfg: RobustModelsConfig,
                  trained: dict[tuple[str, int], torch.nn.Module]) -> pd.DataFrame:
    """Robust accuracy per method, seed, attack and epsilon (tidy), cached by config."""
    return common.robust_curves("robust_models", cfg, trained, eval_split(cfg), {
        "fgsm": {}, "pgd": {"steps": cfg.pgd_steps}, "mifgsm": {"steps": cfg.mifgsm_steps}},
        cfg.epsilons)


def alignment_table(cfg: RobustModelsConfig,
                    trained: dict[tuple[str, int], torch.nn.Module]) -> pd.DataFrame:
    """Mean image/saliency alignment (Etmann et al.) per method and seed."""
    split = data.load(cfg.dataset, "test").subset(cfg.alignment_size, seed=54321)
    rows = []
    for (method, seed), model in trained.items():
        a = torch.cat([metrics.alignment(model, xb) for xb, _ in split.batches(500)])
        c = torch.cat([metrics.cosine_alignment(model, xb) for xb, _ in split.batches(500)])
        rows.append({"method": method, "seed": seed, "alignment": float(a.mean()),
                     "cosine_alignment": float(c.mean())})
    return pd.DataFrame(rows)


def saliency_maps(cfg: RobustModelsConfig, trained: dict[tuple[str, int], torch.nn.Module],
                  seed: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Images, labels and each method's saliency map (|gradient| of the true-label logit)."""
    split = data.load(cfg.dataset, "test").subset(cfg.saliency_images, seed=2024)
    maps = {method: explain.explain(trained[method, seed], split.images, split.labels, "saliency")
            for method in METHODS}
    return split.images, split.labels, maps
