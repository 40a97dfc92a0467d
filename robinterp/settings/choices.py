"""The names settings choose from, without importing what they name.

The modules that implement them hold the implementations by these names (``robinterp.data``'s
data sets, ``robinterp.models``' architectures, ``robinterp.train``'s optimisers); a test checks
that both list the same names in the same order.
"""

from __future__ import annotations

DATASETS = ("mnist", "fashion_mnist", "cifar10", "imagenette", "pathmnist")
"""Data sets (``robinterp.data.DATASETS``)."""
MODELS = ("small_cnn", "sgt_cnn", "alexnet28", "resnet18", "preresnet10", "vgg", "vgg19")
"""Architectures (``robinterp.models.MODELS``)."""
OPTIMIZERS = ("sgd", "adam", "adadelta")
"""Optimisers (``robinterp.train.OPTIMIZERS``)."""
PRECISIONS = ("float32", "bfloat16")
"""Training arithmetic: float32, or bfloat16 autocast (CPUs, and GPUs from Ampere on; float16 would
need a loss scaler)."""
DEVICES = ("auto", "cpu", "cuda")
"""Where models train and are evaluated (``robinterp.device.resolve``)."""
NORMS = ("linf", "l2")
"""Threat models (``robinterp.attacks._steps.NORMS``)."""
EXAMPLE_MODES = ("eval", "train")
"""The mode of a model while a training method makes its examples (``robinterp.methods._modes``)."""
AUTOATTACK_PARTS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")
"""AutoAttack's attacks (pyautoattack's names)."""
AUTOATTACK_VERSIONS = ("standard", "plus", "rand")
"""pyautoattack's versions."""
METRIC_IMPLEMENTATIONS = ("robinterp", "quantus")
"""Who computes the explanation metrics (``robinterp.explanation_quality``)."""
RANDOM_GUESS_CE = ("log2", "ln")
"""How the NsLoss protocol reads "the cross-entropy of a random guess" (``robinterp.methods.nsloss``)."""
RANKINGS = ("signed", "magnitude")
"""What a saliency-guided method ranks (``robinterp.masking``)."""
MASK_UNITS = ("elements", "positions")
"""What k counts in a saliency-guided method's mask (``robinterp.masking``)."""
KL_DIRECTIONS = ("reference_to_masked", "masked_to_reference")
"""The direction of a saliency-guided method's KL term."""
NEURON_SETS = ("activations_and_logits", "activations", "logits")
"""Which activations NsLoss counts as neurons."""
NSLOSS_PASSES = ("auto", "joint", "separate")
"""How NsLoss passes the clean batch and its perturbed copies through the model."""
ALIGNMENT_LOSSES = ("cosine", "mse")
"""How attribution alignment compares its map with the teacher's saliency."""
EXPLAINERS = ("saliency", "integrated_gradients", "gradient_shap", "smoothgrad", "random")
"""Attribution methods (``robinterp.explain.EXPLAINERS``)."""
MEASURE_GROUPS = ("robustness", "quality", "faithfulness", "alignment", "roar")
"""The synthesis's groups of measures (``robinterp.experiments.benchmark_measures.GROUPS``)."""
ROAR_CONTROL = "random"
"""The label of ROAR's control, a seeded random order blind to any model (``robinterp.roar``): no
listed model may take it."""
