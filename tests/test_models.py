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


def test_with_torch_pools_swaps_every_pool_and_keeps_the_function():
    torch.manual_seed(0)
    net = models.build("small_cnn", "mnist", num_classes=10, shape=(1, 28, 28), width=4)
    twin = models.with_torch_pools(net)
    assert sum(isinstance(m, models.MaxPool2d) for m in net.modules()) == 2
    assert not any(isinstance(m, models.MaxPool2d) for m in twin.modules())
    assert sum(type(m) is nn.MaxPool2d for m in twin.modules()) == 2
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(net(x), twin(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(3, 4, 28, 28), (2, 3, 14, 6), (1, 1, 2, 2)])
def test_the_fast_pool_gives_torchs_values_and_indices_ties_included(shape, dtype):
    gen = torch.Generator().manual_seed(0)
    # few distinct values and ReLU's zeros: most windows hold ties, which go to the first maximum
    x = torch.relu(torch.randint(-2, 3, shape, generator=gen).to(dtype))
    for layout in (torch.contiguous_format, torch.channels_last):
        xin = x.contiguous(memory_format=layout).requires_grad_(True)
        out = models.MaxPool2d(2)(xin)
        expected, index = nn.functional.max_pool2d_with_indices(x, 2)
        assert out.dtype == dtype and torch.equal(out, expected)
        grad = torch.randn(expected.shape, generator=gen).to(dtype)
        (ours,) = torch.autograd.grad(out, xin, grad)
        reference = torch.zeros_like(x).flatten(-2).scatter_(-1, index.flatten(-2), grad.flatten(-2)).view_as(x)
        assert torch.equal(ours, reference)


@pytest.mark.parametrize(
    "pool,size", [(models.MaxPool2d(2), 7), (models.MaxPool2d(3, 2, 1), 8), (models.MaxPool2d(2, ceil_mode=True), 8)]
)
def test_the_pool_falls_back_to_torchs_kernel_outside_its_case(pool, size):
    x = torch.rand(2, 3, size, size)
    reference = nn.MaxPool2d(pool.kernel_size, pool.stride, pool.padding, ceil_mode=pool.ceil_mode)
    assert torch.equal(pool(x), reference(x))


@pytest.mark.parametrize("name", ["small_cnn", "sgt_cnn", "alexnet28", "vgg"])
def test_training_with_the_fast_pool_is_training_with_torchs_to_the_bit(name):
    """The same weights after training steps, and the same input gradients with their own
    gradient (input-gradient regularisation's double backward), as with ``nn.MaxPool2d``."""
    torch.manual_seed(0)
    ours = models.build(name, "mnist", num_classes=10, shape=(1, 28, 28), width=4)
    torchs = models.with_torch_pools(ours)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(16, 1, 28, 28, generator=gen), torch.randint(0, 10, (16,), generator=gen)
    for net in (ours, torchs):
        net.eval()  # dropout off: both see the same function
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        for _ in range(3):
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), torchs.parameters()))

    def second_order(net: nn.Module) -> list[torch.Tensor]:
        xin = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(nn.functional.cross_entropy(net(xin), y), xin, create_graph=True)
        return [grad, *torch.autograd.grad(grad.square().sum(), list(net.parameters()))]

    assert all(torch.equal(a, b) for a, b in zip(second_order(ours), second_order(torchs)))
