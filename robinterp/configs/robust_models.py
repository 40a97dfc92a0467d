"""The config of chapter "Robust models see differently" (``robinterp.experiments.robust_models``)."""

from __future__ import annotations

import dataclasses

from robinterp.attacks import AttackEntry
from robinterp.config import param
from robinterp.configs.experiment import ExperimentConfig, attack_field
from robinterp.methods import MethodEntry, method_table


@dataclasses.dataclass(frozen=True)
class RobustModelsConfig(ExperimentConfig):
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
    attacks: tuple[AttackEntry, ...] = attack_field(
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
