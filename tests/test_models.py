"""Model registry: shapes, normalisation inside, captum-safe activations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robinterp import RobinterpError, models


@pytest.mark.parametrize("name", list(models.MODELS))
@pytest.mark.parametrize(
    "dataset,shape", [("mnist", (1, 28, 28)), ("cifar10", (3, 32, 32)), ("imagenette", (3, 96, 96))]
)
def test_every_model_builds_for_every_input_size(name, dataset, shape):
    if name == "vgg19" and shape[1] < 32:  # five pools
        with pytest.raises(RobinterpError, match="at least 32 pixels, got 28"):
            models.build(name, dataset, num_classes=10, shape=shape, width=4)
        return
    net = models.build(name, dataset, num_classes=10, shape=shape, width=4)
    assert net(torch.rand(2, *shape)).shape == (2, 10)
    assert isinstance(net[0], models.Normalize)


@pytest.mark.parametrize("name", ["resnet18", "preresnet10"])
def test_resnets_take_imagenets_stem_on_large_images(name):
    small = models.build(name, "cifar10", num_classes=10, shape=(3, 32, 32), width=4)
    large = models.build(name, "imagenette", num_classes=10, shape=(3, 224, 224), width=4)
    assert small[1].stem(torch.rand(1, 3, 32, 32)).shape[-1] == 32  # CIFAR's: full resolution
    assert large[1].stem(torch.rand(1, 3, 224, 224)).shape[-1] == 56  # ImageNet's: stride 4


@pytest.mark.parametrize("name", list(models.MODELS))
def test_activations_are_distinct_and_not_in_place(name):
    net = models.build(name, "cifar10", num_classes=10, shape=(3, 32, 32), width=4)
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    assert relus and not any(r.inplace for r in relus)
    assert len({id(r) for r in relus}) == len(relus)


def test_normalisation_happens_inside_the_model():
    norm = models.build("small_cnn", "mnist", num_classes=10, shape=(1, 28, 28))[0]
    x = torch.full((1, 1, 2, 2), 0.1307)
    assert torch.allclose(norm(x), torch.zeros_like(x), atol=1e-6)


def test_paper_size_alexnet_has_the_papers_parameter_count_order():
    n = models.count_parameters(models.build("alexnet28", "mnist", num_classes=10, shape=(1, 28, 28)))
    assert 5.0e6 < n < 6.5e6


def test_unknown_model_or_dataset():
    with pytest.raises(RobinterpError, match="unknown model 'lenet'"):
        models.build("lenet", "mnist", num_classes=10, shape=(1, 28, 28))
    with pytest.raises(RobinterpError, match="no normalisation"):
        models.build("small_cnn", "svhn", num_classes=10, shape=(3, 32, 32))
