"""The fields every chapter's config shares, and the default-list helper of its attacks."""

from __future__ import annotations

import dataclasses
from typing import Any

from robinterp.attacks import attack_table
from robinterp.config import Config, param
from robinterp.methods import MethodEntry, method_table
from robinterp.settings.choices import DATASETS, DEVICES, MODELS, OPTIMIZERS, PRECISIONS

# Seeds of the four paper chapters, whose verdicts are the synthesis's scoreboard: five trained
# networks per method. Measured (benchmarks/results/README.md): against three seeds (two in the
# Zeng chapter), 36 of their 145 verdict rows move, most from inconclusive or not judged to a
# verdict. The foundations chapter and the synthesis's own benchmark keep three
# (``ExperimentConfig.seeds``): the book's cold build on 2 cores has to fit its hour.
SCOREBOARD_SEEDS = (0, 1, 2, 3, 4)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig(Config):
    """Fields every chapter shares: data, architecture, seeds, the methods and their schedule."""

    dataset: str = param("mnist", choices=DATASETS)
    """Data set (MNIST and Fashion-MNIST run offline; CIFAR-10 and ImageNette need internet once)."""
    model: str = param("small_cnn", choices=MODELS)
    """Architecture, from robinterp.models.MODELS (a small two-stage CNN on the CPU)."""
    width: int | None = param(16, low=1)
    """First-layer width (None: the architecture's own; 16 halves small_cnn to fit the CPU)."""
    train_size: int | None = param(None, low=1)
    """Training images, a seeded subset; None for all of them."""
    seeds: tuple[int, ...] = param((0, 1, 2), low=0, min_items=1)
    """One model per method per seed; spreads in the chapter are over these."""
    methods: tuple[MethodEntry, ...] = param(method_table({"standard": {"method": "standard"}}))
    """The models the chapter trains: label -> {method: NAME (robinterp.methods), its parameters,
    and optionally its own epochs and lr}; every table follows this list."""
    batch_size: int = param(128, low=1)
    """Minibatch size of every training run."""
    optimizer: str = param("adam", choices=OPTIMIZERS)
    """Optimiser of every training run, from robinterp.train.OPTIMIZERS."""
    device: str = param("auto", choices=DEVICES)
    """Where models train and are evaluated: auto (CUDA when torch sees a GPU, else the CPU), cpu or
    cuda. Resolved where the chapter runs (a Dask worker with a GPU uses it)."""
    precision: str = param("float32", choices=PRECISIONS)
    """Training arithmetic: float32, or bfloat16 autocast (GPUs from Ampere on, and CPUs that do
    bfloat16 natively, with AMX or AVX-512 BF16: there a training step took 0.6 to 0.7 of
    float32's; on a CPU that emulates it, 7.6 to 7.8 times as long; benchmarks/results/precision.md).
    The book keeps float32: its numbers would change."""
    torch_compile: bool = False
    """Train through torch.compile: a compilation per model, then faster steps where the kernels it
    generates beat the eager ones (large models on a GPU). On this project's CPUs the book's small
    CNNs step 1.4 to 1.9x slower compiled (benchmarks/results/precision.md)."""
    accuracy_size: int | None = param(None, low=1)
    """Test images on which each trained model's clean accuracy (the training table's) is measured,
    a seeded subset shared by all models; None for the whole test set (the book's profiles). The
    smoke profile measures fewer: on its tiny models, measuring 10000 images took longer than
    training."""
    attack_early_stop: bool = True
    """How robust accuracy counts: True, an image counts as broken at the first iterate of the attack
    the model misclassifies and leaves the attack there (AutoAttack's and RobustBench's convention),
    and settled work is skipped: images wrong when clean and images broken at a smaller radius are
    not attacked; False, every image takes every step at every radius and only the last iterate
    counts (as PGD and MI-FGSM return it, e.g. in torchattacks). Never higher with True, and
    faster: benchmarks/results/early_stop.md."""

    def labels(self) -> list[str]:
        """The labels of the chapter's methods, in the order its tables show them."""
        return [entry.label for entry in self.methods]


def attack_field(defaults: dict[str, dict[str, Any]]) -> Any:
    """A chapter's ``attacks`` field with its default list (label -> attack and options)."""
    return param(attack_table(defaults))
