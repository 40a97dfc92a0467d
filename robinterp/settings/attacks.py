"""The options of every attack of ``robinterp.attacks``, declared without torch: one frozen
``Config`` dataclass per attack (fields: the attack function's keyword arguments besides the shared
ones, with the same defaults, docstrings and ranges), and ``OPTIONS``, the attack names they belong
to. Each attack's module imports its class from here; ``robinterp.attacks.registry`` checks that
they agree with its function's signature.

Keys nothing (``robinterp.codehash``): a bound attack's options are complete (every field, defaults
filled in) in the key of what runs it.
"""

from __future__ import annotations

import dataclasses

from robinterp.config import Config, ConfigError, param
from robinterp.settings.choices import AUTOATTACK_PARTS, AUTOATTACK_VERSIONS

# robinterp.attacks.fgsm


@dataclasses.dataclass(frozen=True)
class FGSMOptions(Config):
    """FGSM takes no option besides the shared ones (one step of size eps)."""


# robinterp.attacks.pgd


@dataclasses.dataclass(frozen=True)
class PGDOptions(Config):
    """PGD's options."""

    steps: int = param(20, low=0)
    """Iterations (Madry et al.: 40 on MNIST, 7 on CIFAR-10 in training)."""
    step_size: float | None = param(None, low=0, low_open=True)
    """Step size; None for 2.5 eps / steps (the rule of Madry's group's ``robustness`` library)."""
    random_start: bool = True
    """Start from a uniform draw in the ball (Madry et al.), else from the clean image."""


# robinterp.attacks.mifgsm


@dataclasses.dataclass(frozen=True)
class MIFGSMOptions(Config):
    """MI-FGSM's options."""

    steps: int = param(10, low=0)
    """Iterations (Dong et al.: 10)."""
    decay: float = param(1.0, low=0)
    """Momentum decay mu (Dong et al.: 1.0)."""
    step_size: float | None = param(None, low=0, low_open=True)
    """Step size; None for eps / steps, as in the paper."""


# robinterp.attacks.autoattack


@dataclasses.dataclass(frozen=True)
class AutoAttackOptions(Config):
    """AutoAttack's options."""

    version: str = param("standard", choices=AUTOATTACK_VERSIONS)
    """pyautoattack's version: standard (APGD-CE, APGD-T, FAB-T, Square), plus or rand."""
    parts: tuple[str, ...] | None = param(None, choices=AUTOATTACK_PARTS)
    """The parts to run, each with the version's settings (a CPU budget); None for all of the
    version's own."""

    def validate(self) -> None:
        if self.parts is not None and not self.parts:
            raise ConfigError(
                "autoattack parts must name at least one of "
                f"{', '.join(AUTOATTACK_PARTS)}, or be null for the version's own list"
            )


OPTIONS: dict[str, type[Config]] = {
    "fgsm": FGSMOptions,
    "pgd": PGDOptions,
    "mifgsm": MIFGSMOptions,
    "autoattack": AutoAttackOptions,
}
"""Every attack of this package by name: its options."""
