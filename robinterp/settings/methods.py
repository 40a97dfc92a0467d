"""The parameters of every training method of ``robinterp.methods``, declared without torch: one
frozen ``Config`` dataclass per method (a family may share one), fields with docstrings saying
the paper's value and ours, with ranges or choices; and ``PARAMS``, the method names they belong
to. Each method's module imports its class from here; ``robinterp.methods.registry`` checks that
they agree.

Keys nothing (``robinterp.codehash``): a model's key holds its method's parameters complete (every
field, defaults filled in), so what a class here declares is in the key already.
"""

from __future__ import annotations

import dataclasses

from robinterp.config import Config, param
from robinterp.settings.choices import (
    ALIGNMENT_LOSSES,
    EXAMPLE_MODES,
    KL_DIRECTIONS,
    MASK_UNITS,
    NEURON_SETS,
    NORMS,
    NSLOSS_PASSES,
    RANKINGS,
)

# robinterp.methods.standard


@dataclasses.dataclass(frozen=True)
class StandardParams(Config):
    """Standard training has no parameters."""


# robinterp.methods.fgsm_at


@dataclasses.dataclass(frozen=True)
class FGSMATParams(Config):
    eps: float = param(0.3, low=0, low_open=True, high=1)
    """Linf radius of the FGSM step (Goodfellow et al.: 0.25 on MNIST; ours 0.3, MNIST's usual)."""
    clean_weight: float = param(0.5, low=0, high=1)
    """Weight w of the clean cross-entropy: loss = w CE(x) + (1 - w) CE(FGSM(x)); Goodfellow
    et al. use 0.5; 0 trains on adversarial samples only."""
    eps_warmup: float = param(0.0, low=0, high=1)
    """Fraction of training over which eps grows from 0 (0: none, as the paper)."""
    example_mode: str = param("eval", choices=EXAMPLE_MODES)
    """Mode of the model while FGSM makes its examples: "eval" (ours, as Madry's `robustness` library: BatchNorm's
    running statistics, no dropout) or "train" (the batch's statistics, updated at every attack
    step, and dropout on). The same on a network with neither, as the CPU book's small CNN."""


# robinterp.methods.pgd_at


@dataclasses.dataclass(frozen=True)
class PGDATParams(Config):
    eps: float = param(0.3, low=0, low_open=True)
    """Radius of the training attack (Madry et al.: Linf 0.3 on MNIST, 8/255 on CIFAR-10)."""
    steps: int = param(7, low=1)
    """PGD steps per batch (Madry et al.: 40 on MNIST, 7 on CIFAR-10)."""
    step_size: float | None = param(None, low=0, low_open=True)
    """Step size; None: 2.5 eps / steps (the rule of Madry's group's robustness library;
    the paper: 0.01 on MNIST)."""
    norm: str = param("linf", choices=NORMS)
    """Norm of the threat model (Madry et al.: Linf)."""
    eps_warmup: float = param(0.0, low=0, high=1)
    """Fraction of training over which eps (and the step) grow from 0 (ours; 0: none, as the paper)."""
    example_mode: str = param("eval", choices=EXAMPLE_MODES)
    """Mode of the model while PGD makes its examples: "eval" (ours, as Madry's `robustness` library: BatchNorm's
    running statistics, no dropout) or "train" (the batch's statistics, updated at every attack
    step, and dropout on). The same on a network with neither, as the CPU book's small CNN."""


# robinterp.methods.input_grad_reg


@dataclasses.dataclass(frozen=True)
class InputGradientRegParams(Config):
    lam: float = param(0.5, low=0, low_open=True)
    """Weight of the penalty (Zeng et al.'s supplement, A2: 0.5; Ross and Doshi-Velez tune it)."""


# robinterp.methods.jacobian_reg


@dataclasses.dataclass(frozen=True)
class JacobianRegParams(Config):
    lam: float = param(0.01, low=0, low_open=True)
    """Weight of 1/2 ||J||_F^2 (Hoffman et al.'s MNIST value; Moshe et al.: 0.8 for PreResNet10,
    0.05 for VGG19)."""
    n_proj: int = param(1, low=1)
    """Random projections per batch of the Jacobian estimate (Hoffman et al.: 1)."""


# robinterp.methods.distillation


@dataclasses.dataclass(frozen=True)
class TemperatureParams(Config):
    temperature: float = param(100.0, low=0, low_open=True)
    """Softmax temperature T of training (Papernot et al. and Zeng et al.'s supplement: 100)."""


@dataclasses.dataclass(frozen=True)
class DistillationParams(Config):
    temperature: float = param(100.0, low=0, low_open=True)
    """Temperature T of the teacher's training and of the soft labels (Papernot et al.: 100)."""
    teacher_epochs: float | None = param(None, low=0, low_open=True)
    """Epochs of the teacher; None: the student's (Papernot et al. train both alike)."""


# robinterp.methods.attribution_alignment


@dataclasses.dataclass(frozen=True)
class AttributionAlignmentParams(Config):
    weight: float = param(1.0, low=0, low_open=True)
    """Weight of the alignment term beside the cross-entropy (ours: the paper's is not public)."""
    alignment_loss: str = param("cosine", choices=ALIGNMENT_LOSSES)
    """How the map is compared with the teacher's saliency: 1 - cosine (scale-free) or the mean
    squared difference of max-normalised maps (ours)."""
    layer: int = -1
    """The convolution whose rectified output, averaged over channels and up-sampled, is the
    map: its index among the network's ``nn.Conv2d`` modules (-1: the last, as the abstract; in a
    ResNet that is the last block's second convolution, before its BatchNorm and residual sum)."""
    teacher_eps: float = param(2.42, low=0, low_open=True)
    """L2 radius of the teacher's PGD training (the supplement uses PGD-L2; its radius for the
    main model is not public; 2.42 is the `default` profile's mapping of CIFAR-10's 1.5)."""
    teacher_steps: int = param(5, low=1)
    """PGD steps of the teacher's training."""
    teacher_eps_warmup: float = param(0.25, low=0, high=1)
    """Fraction of the teacher's training over which its radius grows from 0 (``pgd_at``'s)."""
    teacher_epochs: float | None = param(None, low=0, low_open=True)
    """Epochs of the teacher; None: the student's."""


# robinterp.methods.saliency_guided


@dataclasses.dataclass(frozen=True)
class MaskingParams(Config):
    """What every saliency-guided method shares."""

    k: float = param(0.5, low=0, high=1, low_open=True, high_open=True)
    """Fraction of features masked (SGT: 0.5 in Ismail et al.'s MNIST runs; Guesmi et al.'s
    MNIST figures: 0.3 and 0.5, CIFAR-10: 0.1)."""
    lam: float = param(1.0, low=0)
    """Weight of the KL term (the papers and the official SGT code: 1)."""
    ranking: str = param("signed", choices=RANKINGS)
    """Rank the signed gradient (official SGT code) or its magnitude (the papers' prose)."""
    unit: str = param("elements", choices=MASK_UNITS)
    """k counts C*H*W elements or H*W pixel positions (identical on 1-channel images)."""
    kl_direction: str = param("reference_to_masked", choices=KL_DIRECTIONS)
    """KL(p(x) || p(masked)) as the official SGT code, or the reverse as Guesmi et al.'s eq. 5."""
    example_mode: str = param("eval", choices=EXAMPLE_MODES)
    """Mode of the model while its saliency (and, for SGA and ASGT, its attack) is computed: "eval" (ours, as Madry's `robustness` library: BatchNorm's
    running statistics, no dropout) or "train" (the batch's statistics, updated at every attack
    step, and dropout on). The same on a network with neither, as the CPU book's small CNN."""


@dataclasses.dataclass(frozen=True)
class SGTParams(MaskingParams):
    """SGT's parameters: the shared masking settings."""


@dataclasses.dataclass(frozen=True)
class AdversarialMaskingParams(MaskingParams):
    """SGA's and ASGT's parameters: the masking settings and the attack inside training."""

    k: float = param(0.3, low=0, high=1, low_open=True, high_open=True)
    """Fraction of features masked (Guesmi et al.'s MNIST figures: 0.3; CIFAR-10: 0.1)."""
    eps: float = param(0.3, low=0, low_open=True, high=1)
    """Linf radius of the attack inside training (Guesmi et al. do not say; ours: MNIST's 0.3)."""
    steps: int = param(1, low=1)
    """Attack steps: 1 is FGSM (ours, the cheapest), more is PGD with a random start."""


@dataclasses.dataclass(frozen=True)
class SGAParams(AdversarialMaskingParams):
    """SGA's parameters."""


@dataclasses.dataclass(frozen=True)
class ASGTParams(AdversarialMaskingParams):
    """ASGT's parameters; its KL goes from the masked adversarial sample, as eq. 5."""

    kl_direction: str = param("masked_to_reference", choices=KL_DIRECTIONS)
    """KL(f(masked x') || f(x)) as Guesmi et al.'s eq. 5 (the default), or the reverse."""


# robinterp.methods.scaat


@dataclasses.dataclass(frozen=True)
class SCAATParams(Config):
    eps: float = param(0.3, low=0, low_open=True, high=1)
    """Largest Linf radius, where the saliency is lowest (ours: MNIST's usual 0.3; the abstract
    gives none)."""
    gamma: float = param(1.0, low=0)
    """Exponent of the budget eps (1 - s)^gamma: 0 ignores the saliency (with clean_weight 0, exactly
    PGD training), larger values protect more of the salient pixels (ours)."""
    steps: int = param(7, low=1)
    """PGD steps per batch (ours, as Madry et al.'s CIFAR-10 training)."""
    step_size: float | None = param(None, low=0, low_open=True)
    """Step size; None: 2.5 eps / steps, the rule of PGD training in this book."""
    adaptive: bool = False
    """Scale each sample's budget by (1 + margin) / 2 (ours; off: one budget map per sample from
    the saliency alone)."""
    clean_weight: float = param(0.5, low=0, high=1)
    """Weight w of the clean cross-entropy, loss = w CE(x) + (1 - w) CE(x_adv) (ours: both, so
    that accuracy is kept, as the abstract claims)."""
    eps_warmup: float = param(0.25, low=0, high=1)
    """Fraction of training over which eps grows from 0 (ours: PGD training at 0.3 on MNIST from
    scratch collapses without it)."""
    example_mode: str = param("eval", choices=EXAMPLE_MODES)
    """Mode of the model while its saliency, margins and PGD examples are made: "eval" (ours, as Madry's `robustness` library: BatchNorm's
    running statistics, no dropout) or "train" (the batch's statistics, updated at every attack
    step, and dropout on). The same on a network with neither, as the CPU book's small CNN."""


# robinterp.methods.nsloss


@dataclasses.dataclass(frozen=True)
class NsLossParams(Config):
    lam: float | None = param(None, low=0, low_open=True)
    """Weight of NsLoss; None: chosen by the paper's lambda protocol (section 4.4), which the
    neuron_sensitivity chapter runs before training (the paper's Tables 1 and 2: 100 and 9.5)."""
    eps_ns: float = param(1.5, low=0, low_open=True)
    """L2 radius of the perturbations; the paper's 20 on 224x224x3 images, scaled by
    sqrt(784 / 150528) to MNIST's 784 pixels (ours)."""
    n: int = param(5, low=1)
    """Perturbations per sample (the paper: N = 5)."""
    neurons: str = param("activations_and_logits", choices=NEURON_SETS)
    """Which activations count as neurons: every activation layer and the logits, as the text says."""
    passes: str = param("auto", choices=NSLOSS_PASSES)
    """The clean batch and its perturbed copies in one forward pass ("joint") or two ("separate":
    the copies normalised by their own batch statistics, BatchNorm's running statistics left to
    the clean batch). The paper does not say; "auto" (ours) is separate where the model has
    BatchNorm, whose statistics one pass would take 5 parts perturbed to 1 clean, and joint
    elsewhere (one pass is cheaper). With dropout in training mode every copy draws its own mask
    either way, so MD then includes dropout's noise."""


PARAMS: dict[str, type[Config]] = {
    "standard": StandardParams,
    "fgsm_at": FGSMATParams,
    "pgd_at": PGDATParams,
    "input_grad_reg": InputGradientRegParams,
    "jacobian_reg": JacobianRegParams,
    "temperature_ce": TemperatureParams,
    "distillation": DistillationParams,
    "attribution_alignment": AttributionAlignmentParams,
    "sgt": SGTParams,
    "sga": SGAParams,
    "asgt": ASGTParams,
    "scaat": SCAATParams,
    "nsloss": NsLossParams,
}
"""Every method of this package by name: its parameters."""
