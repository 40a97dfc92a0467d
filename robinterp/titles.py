"""How pages, tables and figures name things: attacks and metrics by their titles, not their
registry keys. Names only: nothing here computes a number, so no cache entry is keyed by it
(``robinterp.codehash``), and every layer may use it."""

from __future__ import annotations

import re

# how pages name the attacks (robinterp.attacks' registry keys are lower case)
ATTACK_TITLES = {"fgsm": "FGSM", "pgd": "PGD", "mifgsm": "MI-FGSM"}


def attack_title(name: str) -> str:
    """An attack's name as tables, claims and figures show it: "mifgsm" is MI-FGSM."""
    return ATTACK_TITLES.get(name, name.upper())


# how pages name the seven Quantus metrics (robinterp.settings.metrics.SEVEN) and clean
# accuracy: in the words of Moshe et al.'s text
METRIC_TITLES = {
    "max_sensitivity": "max-sensitivity",
    "avg_sensitivity": "avg-sensitivity",
    "local_lipschitz": "local Lipschitz estimate",
    "faithfulness_correlation": "faithfulness correlation",
    "faithfulness_estimate": "faithfulness estimate",
    "complexity": "complexity",
    "sparseness": "sparseness",
    "test_accuracy": "clean accuracy",
}


def metric_title(name: str) -> str:
    """A metric's name as tables, claims and figures show it: "max_sensitivity" is max-sensitivity."""
    return METRIC_TITLES.get(name, name.replace("_", " "))


_METRIC_KEY = re.compile(r"\b(" + "|".join(METRIC_TITLES) + r")\b")


def with_metric_titles(text: str) -> str:
    """``text`` with every metric's registry key written as its title: for sentences written
    with keys (a metric's documented settings, verdict tables saved before the pages used titles)."""
    return _METRIC_KEY.sub(lambda key: METRIC_TITLES[key.group(1)], text)


# how pages name the data sets (robinterp.data.DATASETS' keys)
DATASET_TITLES = {
    "mnist": "MNIST",
    "fashion_mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "imagenette": "ImageNette",
    "pathmnist": "PathMNIST",
}


def dataset_title(name: str) -> str:
    """A data set's name as pages and figures show it: "fashion_mnist" is Fashion-MNIST."""
    return DATASET_TITLES.get(name, name)


# how pages name the attacks' norms (robinterp.attacks' "linf" and "l2")
NORM_TITLES = {"linf": "L∞", "l2": "L2"}


def norm_title(name: str) -> str:
    """A norm's name as pages and figures show it: "linf" is L∞."""
    return NORM_TITLES.get(name, name)


# how pages name the architectures (robinterp.models.MODELS' keys) and optimisers (robinterp.train.OPTIMIZERS')
MODEL_TITLES = {
    "small_cnn": "small CNN",
    "sgt_cnn": "the SGT code's CNN",
    "alexnet28": "AlexNet (small images)",
    "resnet18": "ResNet-18",
    "preresnet10": "PreResNet-10",
    "vgg": "VGG",
    "vgg19": "VGG-19",
}
OPTIMIZER_TITLES = {"sgd": "SGD", "adam": "Adam", "adadelta": "Adadelta"}


def model_title(name: str) -> str:
    """An architecture's name as pages show it: "small_cnn" is small CNN."""
    return MODEL_TITLES.get(name, name)


def optimizer_title(name: str) -> str:
    """An optimiser's name as pages show it: "adam" is Adam."""
    return OPTIMIZER_TITLES.get(name, name)


def params_text(text: str) -> str:
    """A method entry's changed parameters (``name=value, ...``) with norms by their titles."""
    return re.sub(r"\bnorm=(\w+)", lambda m: f"norm={norm_title(m.group(1))}", text)
