"""Which test images a measure reads: a seeded subset of the test set per purpose, the same for
every model of every chapter (so that models are compared image by image)."""

from __future__ import annotations

from robinterp import data
from robinterp.config import ConfigError

# The seed of each evaluation subset of the test set: each purpose draws its own (fixed long ago;
# changing one changes every table that uses it).
SUBSET_SEEDS = {
    "attacks": 12345,
    "alignment": 54321,
    "maps": 2024,
    "removal": 777,
    "autoattack": 4242,
    "explanation_quality": 31337,
}


def eval_subset(dataset: str, size: int | None, purpose: str) -> data.Split:
    """The seeded subset of ``size`` test images (None: all) that every model is evaluated on for ``purpose``."""
    if purpose not in SUBSET_SEEDS:
        raise ConfigError(f"no evaluation subset for {purpose!r}; one of {', '.join(SUBSET_SEEDS)}")
    return data.load(dataset, "test").subset(size, seed=SUBSET_SEEDS[purpose])
