"""The config of the SGT and ASGT chapter (Guesmi et al.; ``robinterp.experiments.saliency_guided_training``)."""

from __future__ import annotations

import dataclasses

from robinterp.attacks import AttackEntry
from robinterp.config import ConfigError, param
from robinterp.configs.experiment import SCOREBOARD_SEEDS, ExperimentConfig, attack_field
from robinterp.methods import MethodEntry, method_table
from robinterp.settings.choices import (
    OPTIMIZERS,
)


@dataclasses.dataclass(frozen=True)
class SaliencyGuidedConfig(ExperimentConfig):
    """Settings of the chapter; the defaults are the `default` profile (CPU, minutes)."""

    train_size: int | None = param(10000, low=1)
    """Training images, a seeded subset; None for all of them."""
    seeds: tuple[int, ...] = param(SCOREBOARD_SEEDS, low=0, min_items=1)
    """One model per method per seed; spreads and the verdicts' intervals are over these (five:
    this chapter's verdicts are on the synthesis's scoreboard, ``SCOREBOARD_SEEDS``)."""
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
    optimizer: str = param("adam", choices=OPTIMIZERS)
    """Optimiser (the paper: SGD)."""
    lr: float = param(1e-3, low=0, low_open=True)
    """Learning rate (the paper: 1e-2 with SGD)."""
    eval_size: int = param(250, low=1, high=10000)
    """Test images attacked (a seeded subset of the test set)."""
    epsilons: tuple[float, ...] = param((0.0, 0.1, 0.2, 0.25, 0.3, 0.4), low=0, high=1, min_items=1)
    """Linf radii of the curves; 0.2 and 0.25 are where the paper quotes numbers."""
    attacks: tuple[AttackEntry, ...] = attack_field(
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
