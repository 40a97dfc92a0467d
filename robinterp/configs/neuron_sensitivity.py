"""The config of the NsLoss chapter (Moshe et al.; ``robinterp.experiments.neuron_sensitivity``)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from robinterp.attacks import AttackEntry
from robinterp.config import ConfigError, param
from robinterp.configs.experiment import SCOREBOARD_SEEDS, ExperimentConfig, attack_field
from robinterp.methods import MethodEntry, method_table
from robinterp.settings.choices import (
    AUTOATTACK_PARTS,
    METRIC_IMPLEMENTATIONS,
    OPTIMIZERS,
    RANDOM_GUESS_CE,
)
from robinterp.settings.metrics import MetricEntry, metric_table

STANDARD = "standard"  # the label of the pretrained model every method continues from


@dataclasses.dataclass(frozen=True)
class NeuronSensitivityConfig(ExperimentConfig):
    """Settings of the chapter; the defaults are the `default` profile (CPU, minutes)."""

    BUDGET_FIELDS: ClassVar[tuple[str, ...]] = ("pretrain_epochs", "finetune_epochs")
    """How long the chapter's models train (what a budget ladder multiplies, ``robinterp.ladder``)."""

    train_size: int | None = param(10000, low=1)
    """Training images, a seeded subset; None for all of them."""
    seeds: tuple[int, ...] = param(SCOREBOARD_SEEDS, low=0, min_items=1)
    """One model per method per seed; spreads and the verdicts' intervals are over these (five:
    this chapter's verdicts are on the synthesis's scoreboard, ``SCOREBOARD_SEEDS``)."""
    methods: tuple[MethodEntry, ...] = param(
        method_table(
            {
                "NsLoss": {"method": "nsloss", "lam": None, "eps_ns": 1.5, "n": 5},
                "JacobReg": {"method": "jacobian_reg", "lam": 0.01, "n_proj": 1},
                "PGD-AT": {"method": "pgd_at", "eps": 0.1, "steps": 7},
            }
        )
    )
    """The methods that continue training the standard model: label -> {method, its parameters,
    optionally its own epochs and lr (the paper's Tables 1 and 2 give some their own)}. NsLoss
    with lam unset takes the lambda the paper's protocol selects; eps_ns 1.5 is the paper's 20
    scaled to MNIST's pixels (ours). JacobReg: Hoffman et al.'s MNIST weight. PGD-AT: Linf 0.1,
    7 steps (ours for MNIST; the paper: 4/255 and 8/255, 7 steps)."""
    batch_size: int = param(128, low=1)
    """Minibatch size of every training run."""
    optimizer: str = param("adam", choices=OPTIMIZERS)
    """Optimiser of every training run (the paper: an SGD-based one)."""
    pretrain_epochs: float = param(1.0, low=0, low_open=True)
    """Epochs of the standard model every method starts from."""
    pretrain_lr: float = param(1e-3, low=0, low_open=True)
    """Learning rate of the standard model."""
    finetune_epochs: float = param(1.0, low=0, low_open=True)
    """Epochs each method continues training the standard model unless it sets its own (the
    paper: 40 to 120)."""
    finetune_lr: float = param(1e-4, low=0, low_open=True)
    """The low learning rate of the continued training unless a method sets its own (the paper:
    1e-4 to 5e-4)."""
    lambda_batches: int = param(10, low=1)
    """Batches over which NsLoss_0 is averaged (the paper: 10 random batches)."""
    lambda_batches_from: str = param("train_and_validation", choices=("train_and_validation", "train"))
    """Where those batches come from: half from the training images and half from the validation
    images, as the paper's "training and validation sets" (ImageNette's validation set is the test
    set the paper scores; here, likewise, the test split's images, whose labels NsLoss never
    reads), or the training images only (this book until now)."""
    lambda_search_iterations: int = param(3, low=1)
    """Candidates of the bisection once a bracket is found, each trained up to one epoch."""
    lambda_spread: float = param(10.0, low=1, low_open=True)
    """Factor by which the search grows (or shrinks) lambda from lambda_0 until one candidate is
    too high and one is not (the paper: "the same order of magnitude"; ours: 10)."""
    lambda_max_steps: int = param(1, low=1)
    """At most this many growing (or shrinking) steps: the search's cap is lambda_0 * spread**steps
    (ours: one step, the paper's "same order of magnitude"); without a bracket by then it stops,
    and the page says so."""
    lambda_accuracy_drop: float = param(10.0, low=0, low_open=True, high=100)
    """A candidate is also too high when its training accuracy over the last 10 batches falls more
    than this many points below the standard model's on the epoch's first 10 (ours: the paper's
    test, the cross-entropy of a random guess, does not fire in a one-epoch continuation at a low
    learning rate)."""
    random_guess_ce: str = param("ln", choices=RANDOM_GUESS_CE)
    """A random guess's cross-entropy in nats, ln C (ours), or log2 C read literally."""
    eval_size: int = param(250, low=1, high=10000)
    """Test images attacked with PGD."""
    epsilons: tuple[float, ...] = param((0.0, 0.05, 0.1, 0.2), low=0, high=1, min_items=1)
    """Linf radii of the PGD robust-accuracy curves."""
    attacks: tuple[AttackEntry, ...] = attack_field({"pgd": {"attack": "pgd", "steps": 20}})
    """The evaluation attacks besides AutoAttack: label -> {attack: NAME (robinterp.attacks), its
    options}; the robust-accuracy table and figure follow this list (the paper: PGD; step 2.5 eps /
    steps, random start)."""
    autoattack_size: int = param(50, low=1, high=10000)
    """Test images attacked with AutoAttack."""
    autoattack_eps: float = param(0.1, low=0, low_open=True, high=1)
    """Linf radius of the AutoAttack evaluation."""
    autoattack_parts: tuple[str, ...] = param(("apgd-ce",), choices=AUTOATTACK_PARTS, min_items=1)
    """AutoAttack's attacks to run (its standard version: apgd-ce, apgd-t, fab-t, square)."""
    metrics: tuple[MetricEntry, ...] = param(metric_table())
    """The explanation metrics scored: label -> {metric: NAME (robinterp.explanation_quality), and
    any Quantus setting the entry changes}; the quality table, the comparison with Quantus and the
    paper's follow this list (the paper: the seven of its Table 3). A claim about one of the
    paper's metrics is judged under the first entry of that metric."""
    quantus_size: int = param(50, low=1, high=10000)
    """Test images scored by the Quantus metrics."""
    quantus_samples: int = param(5, low=1)
    """Perturbation samples (runs) per image in the sensitivity and faithfulness metrics."""
    quantus_noise: float | None = param(0.05, low=0, low_open=True)
    """Noise size of the three sensitivity metrics; None: Quantus's (uniform 0.2, Gaussian sd
    0.1), made for ImageNet, which IG on MNIST cannot tell from random attributions."""
    metric_implementation: str = param("robinterp", choices=METRIC_IMPLEMENTATIONS)
    """Who computes the metrics: robinterp's batched version of Quantus's definitions (ours;
    tested equal to Quantus 0.6, about 2x faster for all seven) or Quantus's own classes."""
    ig_steps: int = param(20, low=1)
    """Integrated Gradients steps (black baseline)."""
    eval_batch_size: int = param(256, low=1)
    """Images per attack batch, explainer call and Integrated Gradients pass: a memory bound,
    to lower for large networks on 224-pixel images (256: ``models.EVAL_BATCH_SIZE``, the fastest
    measured on this project's CPU)."""
    sweep_factors: tuple[float, ...] = param((0.3, 1.0, 3.0), low=0, low_open=True, min_items=1)
    """Lambda sweep: multiples of the selected lambda (the paper's Table 5), every seed."""
    sweep_epochs: float | None = param(None, low=0, low_open=True)
    """Epochs of continued training of the sweep's models; None: the methods' (``finetune_epochs``,
    so that the sweep's 1x model is the chapter's NsLoss model). The paper's Table 5 trains 10
    epochs where its Table 1 trains 80: the paper profiles set 10."""
    curve_epochs: int = param(3, low=1)
    """Fine-tuning epochs after each of which every seed's NsLoss model is scored (Figure 4)."""
    equivalence_share: float = param(0.5, low=0, low_open=True)
    """"JacobReg is approximately as effective as adversarial training" holds on a metric when
    JacobReg - PGD-AT stays within this share of PGD-AT's improvement over the standard model
    (ours: the paper states no margin)."""
    accuracy_margin: float = param(2.0, low=0, low_open=True, high=100)
    """"A similarly low decline in accuracy": NsLoss's clean accuracy at most this many points
    below each other method's (ours: the paper states no margin)."""
    attribution_images: int = param(6, low=1, high=32)
    """Test images in the attribution-map grids."""

    def validate(self) -> None:
        super().validate()
        if STANDARD in self.labels():
            raise ConfigError(
                f"methods: the label {STANDARD!r} names the pretrained model every method "
                f"continues from; give the entry another label"
            )
        if not any(e.method == "nsloss" for e in self.methods):
            raise ConfigError(
                "methods must list an NsLoss entry (method: nsloss): the chapter's lambda "
                "protocol, sweep and epoch curve are about it"
            )

    def nsloss_entry(self) -> MethodEntry:
        """The first NsLoss entry: the protocol, the sweep and the epoch curve use it."""
        return next(e for e in self.methods if e.method == "nsloss")
