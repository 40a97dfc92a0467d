"""The config of the SCAAT chapter (Xu et al.; ``robinterp.experiments.scaat``)."""

from __future__ import annotations

import dataclasses

from robinterp.config import ConfigError, param
from robinterp.configs.experiment import SCOREBOARD_SEEDS, ExperimentConfig
from robinterp.methods import MethodEntry, method_table
from robinterp.settings.choices import (
    DATASETS,
)


@dataclasses.dataclass(frozen=True)
class SCAATConfig(ExperimentConfig):
    """Settings of the chapter; the defaults are the `default` profile (CPU, minutes)."""

    dataset: str = param("mnist", choices=DATASETS)
    """First data set: the comparison and the ablation run on it."""
    extra_datasets: tuple[str, ...] = param(("fashion_mnist",), choices=DATASETS)
    """Further data sets on which the comparison is repeated (the abstract: "natural and
    pathological" images; here Fashion-MNIST, whose objects have texture inside them)."""
    train_size: int | None = param(10000, low=1)
    """Training images, a seeded subset; None for all of them (10000: the SGT chapter's, so its
    ST and SGT models come from the cache)."""
    seeds: tuple[int, ...] = param(SCOREBOARD_SEEDS, low=0, min_items=1)
    """One model per method per seed; spreads and the verdicts' intervals are over these (five:
    this chapter's verdicts are on the synthesis's scoreboard, ``SCOREBOARD_SEEDS``)."""
    methods: tuple[MethodEntry, ...] = param(
        method_table(
            {
                "ST": {"method": "standard"},
                "PGD-AT": {"method": "pgd_at", "eps": 0.3, "steps": 5, "eps_warmup": 0.25},
                "SGT": {"method": "sgt", "k": 0.5},
                "SCAAT": {"method": "scaat", "eps": 0.3, "steps": 5},
            }
        )
    )
    """The models compared: label -> {method, its parameters}. PGD-AT and SCAAT share the radius,
    steps and warm-up, so that the saliency-shaped budget is the only difference left beside the
    clean loss term; SGT as Ismail et al.'s MNIST setting (k 0.5)."""
    ablation: tuple[MethodEntry, ...] = param(
        method_table(
            {
                "gamma 0": {"method": "scaat", "eps": 0.3, "steps": 5, "gamma": 0.0},
                "gamma 2": {"method": "scaat", "eps": 0.3, "steps": 5, "gamma": 2.0},
                "adaptive": {"method": "scaat", "eps": 0.3, "steps": 5, "adaptive": True},
                "eps 0.15": {"method": "scaat", "eps": 0.15, "steps": 5},
                "adversarial only": {"method": "scaat", "eps": 0.3, "steps": 5, "clean_weight": 0.0},
            }
        )
    )
    """SCAAT variants, each changing one design choice of the SCAAT entry, trained on the first
    data set and compared with it: gamma 0 ignores the saliency, adaptive scales each sample's
    budget by its margin, a smaller budget, no clean loss term."""
    extra_eps: float | None = param(0.1, low=0, low_open=True, high=1)
    """Linf radius of every method that sets one (PGD-AT, SCAAT) on the extra data sets: the book's
    Fashion-MNIST radius, 0.1, where MNIST's is 0.3 (the robust_models and robust_attribution
    chapters train Fashion-MNIST at 0.1; at 0.3 its objects' textures are erased). None: the
    methods' own radius on every data set."""
    ablation_seeds: tuple[int, ...] = param((0, 1, 2), low=0, min_items=1)
    """Seeds of the ablation models, among ``seeds``: the comparisons' own, so that each variant is
    judged against SCAAT over training variance (with one seed its rows are shown, not judged).
    Three, where ``seeds`` has five: the ablation is the book's question, not the paper's claim,
    and is not on the scoreboard."""
    epochs: float = param(1.0, low=0, low_open=True)
    """Epochs of every method that does not set its own."""
    lr: float = param(1e-3, low=0, low_open=True)
    """Learning rate of every method that does not set its own (Adam)."""
    eval_size: int = param(500, low=1, high=10000)
    """Test images whose saliency maps are measured (sparseness, complexity, background, accuracy)."""
    faithfulness_size: int = param(200, low=1, high=10000)
    """Test images of the faithfulness measures (FaithfulnessCorrelation, removal curves)."""
    quantus_samples: int = param(20, low=1)
    """Random feature subsets per image in FaithfulnessCorrelation (Quantus: 100)."""
    removal_fractions: tuple[float, ...] = param(
        (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), low=0, high=1, high_open=True, min_items=1
    )
    """Fractions of top-|saliency| features replaced by noise in the removal test."""
    background_threshold: float | None = param(0.1, low=0, high=1)
    """A pixel is background when its brightest channel is at most this (MNIST and Fashion-MNIST
    draw objects on black); None leaves the measure out (natural and pathology images have no
    black background)."""
    accuracy_margin: float = param(1.0, low=0, low_open=True)
    """Points of clean accuracy within which "accuracy is unaffected" holds (ours)."""
    robust_eps: float = param(0.1, low=0, low_open=True, high=1)
    """Linf radius of the PGD accuracy shown for context (the abstract claims no robustness)."""
    pgd_steps: int = param(10, low=1)
    """PGD steps of that evaluation (step 2.5 eps / steps, random start)."""
    saliency_images: int = param(6, low=1, high=32)
    """Test images in the saliency-map grids."""
    ig_steps: int = param(20, low=1)
    """Integrated Gradients steps in the grids (black baseline)."""

    def validate(self) -> None:
        super().validate()
        clash = set(self.labels()) & {e.label for e in self.ablation}
        if clash:
            raise ConfigError(f"ablation labels must differ from the methods' labels; both have {sorted(clash)[0]!r}")
        if not any(e.method == "scaat" for e in self.methods):
            raise ConfigError("methods must list a SCAAT entry (method: scaat): the claims are about it")
        if self.dataset in self.extra_datasets or len(set(self.extra_datasets)) != len(self.extra_datasets):
            raise ConfigError(f"extra_datasets must be distinct and differ from dataset {self.dataset!r}")
        if not set(self.ablation_seeds) <= set(self.seeds):
            raise ConfigError(
                f"ablation_seeds {list(self.ablation_seeds)} must be among seeds {list(self.seeds)}: "
                f"each variant is compared with the SCAAT model of the same seed"
            )
        if not self.removal_fractions or 0.0 not in self.removal_fractions:
            raise ConfigError("removal_fractions must include 0 (the unmasked accuracy)")

    def datasets(self) -> tuple[str, ...]:
        return (self.dataset, *self.extra_datasets)

    def scaat_label(self) -> str:
        """The SCAAT entry the claims and the ablation are about (the first listed)."""
        return next(e.label for e in self.methods if e.method == "scaat")
