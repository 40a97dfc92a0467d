"""Chapter "Saliency-guided training and robustness" (Guesmi et al. 2024).

Standard training (ST), SGT at two mask fractions, ASGT, FGSM adversarial
training (AT-FGSM) and SGA, trained alike; robust accuracy under FGSM, PGD and
MI-FGSM across epsilon; saliency maps; the SGT paper's faithfulness test; the
paper's numbers beside ours.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import torch

from robinterp import cache, data, explain, metrics, train
from robinterp.config import ConfigError, param
from robinterp.experiments import common
from robinterp.saliency_guided import KL_DIRECTIONS, RANKINGS, UNITS


@dataclasses.dataclass(frozen=True)
class SaliencyGuidedConfig(common.ExperimentConfig):
    """Settings of the chapter; the defaults are the `default` profile (CPU, minutes)."""

    train_size: int | None = param(10000, low=1)
    """Training images, a seeded subset; None for all of them."""
    epochs: float = param(1.0, low=0, low_open=True)
    """Epochs for every method (the paper: 20)."""
    batch_size: int = param(128, low=1)
    """Minibatch size (the paper: 128)."""
    optimizer: str = param("adam", choices=("sgd", "adam", "adadelta"))
    """Optimiser (the paper: SGD)."""
    lr: float = param(1e-3, low=0, low_open=True)
    """Learning rate (the paper: 1e-2 with SGD)."""
    sgt_fractions: tuple[float, ...] = param((0.3, 0.5), low=0, high=1, low_open=True, high_open=True)
    """Mask fractions k of the SGT models (the paper's Figure 2: 0.3 and 0.5)."""
    asgt_fraction: float = param(0.3, low=0, high=1, low_open=True, high_open=True)
    """Mask fraction k of ASGT and SGA (the paper's MNIST figures: 0.3)."""
    lam: float = param(1.0, low=0)
    """Weight of the KL term (the paper and the official code: 1)."""
    ranking: str = param("signed", choices=RANKINGS)
    """Rank the signed gradient (official SGT code) or its magnitude (the paper's prose)."""
    unit: str = param("elements", choices=UNITS)
    """k counts C*H*W elements or H*W pixel positions (identical on 1-channel MNIST)."""
    sgt_kl_direction: str = param("reference_to_masked", choices=KL_DIRECTIONS)
    """SGT's KL: KL(p(x) || p(masked)) as the official code, or the reverse as Algorithm 1."""
    asgt_kl_direction: str = param("masked_to_reference", choices=KL_DIRECTIONS)
    """ASGT's KL: KL(f(masked x') || f(x)) as equation 5, or the reverse."""
    train_eps: float = param(0.3, low=0, low_open=True, high=1)
    """Linf radius of the attack inside AT-FGSM, SGA and ASGT (the paper does not say; ours)."""
    train_attack_steps: int = param(1, low=1)
    """Attack steps in training: 1 is FGSM (our default), more is PGD."""
    eval_size: int = param(250, low=1, high=10000)
    """Test images attacked (a seeded subset of the test set)."""
    epsilons: tuple[float, ...] = param((0.0, 0.1, 0.2, 0.25, 0.3, 0.4), low=0, high=1)
    """Linf radii of the curves; 0.2 and 0.25 are where the paper quotes numbers."""
    pgd_steps: int = param(10, low=1)
    """PGD steps at evaluation (step 2.5 eps / steps, random start)."""
    mifgsm_steps: int = param(10, low=1)
    """MI-FGSM steps at evaluation (decay 1.0, step eps / steps)."""
    removal_fractions: tuple[float, ...] = param(
        (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), low=0, high=1, high_open=True)
    """Fractions of top-|saliency| features removed in the faithfulness test."""
    faithfulness_size: int = param(500, low=1, high=10000)
    """Test images of the faithfulness test."""
    saliency_images: int = param(6, low=1, high=32)
    """Test images shown in the saliency-map grid."""

    def validate(self) -> None:
        super().validate()
        if not self.epsilons or not self.sgt_fractions:
            raise ConfigError("epsilons and sgt_fractions must each list at least one value")


def methods(cfg: SaliencyGuidedConfig) -> dict[str, tuple[str, tuple[tuple[str, Any], ...]]]:
    """Label -> (registered method, its parameters), in the order of the paper's figures."""
    shared = (("lam", cfg.lam), ("ranking", cfg.ranking), ("unit", cfg.unit))
    attack = (("eps", cfg.train_eps), ("steps", cfg.train_attack_steps))
    table: dict[str, tuple[str, tuple[tuple[str, Any], ...]]] = {"ST": ("standard", ())}
    for k in cfg.sgt_fractions:
        table[f"SGT k={k:g}"] = ("sgt", (("k", k), ("kl_direction", cfg.sgt_kl_direction)) + shared)
    table["ASGT"] = ("asgt", (("k", cfg.asgt_fraction), ("kl_direction", cfg.asgt_kl_direction))
                     + shared + attack)
    # AT-FGSM: adversarial samples only, as Guesmi et al. describe it; train_attack_steps > 1 is
    # ignored here on purpose: the baseline is FGSM by name
    table["AT-FGSM"] = ("fgsm_at", (("eps", cfg.train_eps), ("clean_weight", 0.0)))
    table["SGA"] = ("sga", (("k", cfg.asgt_fraction), ("kl_direction", cfg.sgt_kl_direction))
                    + shared + attack)
    return table


def train_spec(cfg: SaliencyGuidedConfig, label: str, seed: int) -> train.TrainSpec:
    method, params = methods(cfg)[label]
    return train.TrainSpec(dataset=cfg.dataset, train_size=cfg.train_size, model=cfg.model,
                           width=cfg.width, method=method, method_params=params,
                           epochs=cfg.epochs, batch_size=cfg.batch_size, optimizer=cfg.optimizer,
                           lr=cfg.lr, seed=seed)


def train_all(cfg: SaliencyGuidedConfig) -> tuple[dict[tuple[str, int], torch.nn.Module], pd.DataFrame]:
    return common.train_grid({(label, seed): train_spec(cfg, label, seed)
                              for seed in cfg.seeds for label in methods(cfg)})


def robust_curves(cfg: SaliencyGuidedConfig,
                  trained: dict[tuple[str, int], torch.nn.Module]) -> pd.DataFrame:
    split = data.load(cfg.dataset, "test").subset(cfg.eval_size, seed=12345)
    return common.robust_curves("saliency_guided_training", cfg, trained, split, {
        "fgsm": {}, "pgd": {"steps": cfg.pgd_steps}, "mifgsm": {"steps": cfg.mifgsm_steps}},
        cfg.epsilons)


def saliency_maps(cfg: SaliencyGuidedConfig, trained: dict[tuple[str, int], torch.nn.Module],
                  seed: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    split = data.load(cfg.dataset, "test").subset(cfg.saliency_images, seed=2024)
    return split.images, split.labels, {
        label: explain.explain(trained[label, seed], split.images, split.labels, "saliency")
        for label in methods(cfg)}


def faithfulness(cfg: SaliencyGuidedConfig,
                 trained: dict[tuple[str, int], torch.nn.Module]) -> pd.DataFrame:
    """Accuracy after removing the top d% features by |saliency|, and a random-ranking control.

    Cached by the chapter config, like the robustness curves.
    """
    def compute() -> pd.DataFrame:
        split = data.load(cfg.dataset, "test").subset(cfg.faithfulness_size, seed=777)
        rows = []
        for (label, seed), model in trained.items():
            attribution = explain.explain(model, split.images, split.labels, "saliency")
            for ranking in ("saliency", "random"):
                accs = metrics.accuracy_after_removal(model, split.images, split.labels, attribution,
                                                      cfg.removal_fractions,
                                                      random_ranking=ranking == "random", seed=seed)
                rows += [{"method": label, "seed": seed, "ranking": ranking, "removed": d,
                          "accuracy": a} for d, a in zip(cfg.removal_fractions, accs)]
        return pd.DataFrame(rows)

    return cache.cached_table({"chapter": "saliency_guided_training", "table": "faithfulness",
                               "config": dataclasses.asdict(cfg)}, compute, code=(__name__,))
