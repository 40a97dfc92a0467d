"""Model registry. Every model takes pixels in [0, 1] and normalises inside.

Keeping normalisation in the model means attacks, epsilons and attributions all
live in pixel space, where the papers state them. Every activation is its own,
non-in-place module so that captum's hooks (DeepLift, LRP, layer methods) work. The nets
pool with ``MaxPool2d``, torch's numbers computed faster; captum's DeepLift and LRP choose
their max-pool rule by the exact class ``nn.MaxPool2d``, so explain with them a copy from
``with_torch_pools`` (the book's explainers take gradients, which need neither).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator

import torch
from torch import nn

from robinterp import RobinterpError
from robinterp.device import on_model_device

# Per-channel statistics of the training sets, used only inside the models.
NORMALISATION = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "imagenette": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # ImageNet's, as usual for it
    "pathmnist": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # MedMNIST's own examples' normalisation
}


class Normalize(nn.Module):
    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class _MaxPool2x2(torch.autograd.Function):
    """2x2 max-pooling of stride 2 from four strided views: the values of ``F.max_pool2d`` and the
    indices of ``F.max_pool2d_with_indices`` (each window's first maximum in row-major order),
    so its gradient is torch's own ``max_pool2d_with_indices_backward``, double backward included."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
        c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
        top, bottom = torch.maximum(a, b), torch.maximum(c, d)
        if ctx.needs_input_grad[0]:  # the indices only where a gradient will be routed
            width = x.shape[-1]
            corner = torch.arange(0, x.shape[-2], 2).view(-1, 1) * width + torch.arange(0, width, 2)
            # ties go to the earlier position, as in torch's kernel (a NaN window aside)
            index = torch.where(top >= bottom, corner + (a < b), (corner + width) + (c < d))
            ctx.save_for_backward(x, index)
        return torch.maximum(top, bottom)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x, index = ctx.saved_tensors  # type: ignore[attr-defined]
        return torch.ops.aten.max_pool2d_with_indices_backward(grad, x, [2, 2], [2, 2], [0, 0], [1, 1], False, index)


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` with the same numbers, faster on the CPU for the book's 2x2 windows of
    stride 2 on even sizes: element-wise maxima of four strided views give the same values, and
    the same indices, so the same gradients (``tests/test_models.py``). Timed side by side
    (``benchmarks/results/pool.md``), a training step of the small CNN takes 0.92 to 0.95 of the
    time with torch's NCHW kernel and an evaluation forward pass 0.63 (the profiler's self time had
    put that kernel at a quarter of the step; computing the indices costs part of what it saves).
    Other windows, odd sizes and GPUs run torch's own kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.device.type == "cpu"
            and x.dim() == 4
            and x.shape[-2] % 2 == 0
            and x.shape[-1] % 2 == 0
            and self.kernel_size in (2, (2, 2))
            and self.stride in (2, (2, 2))
            and self.padding in (0, (0, 0))
            and self.dilation in (1, (1, 1))
            and not self.ceil_mode
            and not self.return_indices
        ):
            return _MaxPool2x2.apply(x)
        return super().forward(x)


def with_torch_pools(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ``MaxPool2d`` layers are torch's own ``nn.MaxPool2d``, with the
    same settings: the same function and gradients, computed by torch's kernel."""
    twin = copy.deepcopy(model)
    for parent in twin.modules():
        for name, child in parent.named_children():
            if isinstance(child, MaxPool2d):
                setattr(
                    parent,
                    name,
                    nn.MaxPool2d(
                        child.kernel_size, child.stride, child.padding, child.dilation, ceil_mode=child.ceil_mode
                    ),
                )
    return twin


def sgt_cnn(in_channels: int, num_classes: int, image_size: int, width: int = 32) -> nn.Module:
    """The MNIST CNN of the official SGT code (Ismail et al. 2021); ``width`` = first conv."""
    flat = 2 * width * ((image_size - 4) // 2) ** 2
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3),
        nn.ReLU(),
        MaxPool2d(2),
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(flat, 128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, num_classes),
    )


def small_cnn(in_channels: int, num_classes: int, image_size: int, width: int = 32) -> nn.Module:
    """A small CNN for the CPU book: two 5x5 conv-ReLU-pool stages and two FC layers.

    The same shape as Madry et al.'s MNIST net at half its width (~455k
    parameters at width 32): pooling early makes it ~3x cheaper than ``sgt_cnn``.
    """
    flat = 2 * width * (image_size // 4) ** 2
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 5, padding=2),
        nn.ReLU(),
        MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 5, padding=2),
        nn.ReLU(),
        MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


def alexnet28(in_channels: int, num_classes: int, image_size: int, width: int = 64) -> nn.Module:
    """AlexNet adapted to small images (Guesmi et al.): five convs, three FC layers.

    ``width=64`` gives the paper-size net (~5.9M parameters on 28x28); the CPU
    profiles use a narrower one.
    """
    w = width
    feat = image_size // 8
    return nn.Sequential(
        nn.Conv2d(in_channels, w, 3, padding=1),
        nn.ReLU(),
        MaxPool2d(2),
        nn.Conv2d(w, 3 * w, 3, padding=1),
        nn.ReLU(),
        MaxPool2d(2),
        nn.Conv2d(3 * w, 6 * w, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6 * w, 4 * w, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4 * w, 4 * w, 3, padding=1),
        nn.ReLU(),
        MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(4 * w * feat * feat, 16 * w),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(16 * w, 16 * w),
        nn.ReLU(),
        nn.Linear(16 * w, num_classes),
    )


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, pre_activation: bool) -> None:
        super().__init__()
        self.pre = pre_activation
        self.bn1 = nn.BatchNorm2d(cin if pre_activation else cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.relu1 = nn.ReLU()
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.relu2 = nn.ReLU()
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre:  # He et al. 2016b: BN-ReLU-conv, identity path untouched
            out = self.relu1(self.bn1(x))
            out = self.conv1(out)
            out = self.conv2(self.relu2(self.bn2(out)))
            return out + self.shortcut(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet with a CIFAR-style stem (3x3, no max-pool) below 64 pixels, else ImageNet's.

    ImageNet's stem (7x7 stride-2 conv, BN-ReLU, 3x3 stride-2 max-pool) shrinks a
    224-pixel image 4x before the first block, as He et al. do.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        blocks: tuple[int, ...],
        pre_activation: bool,
        width: int = 64,
        image_size: int = 32,
    ) -> None:
        super().__init__()
        self.stem = (
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
            if image_size < 64
            else nn.Sequential(
                nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.MaxPool2d(3, 2, 1),
            )
        )
        layers, cin = [], width
        for i, n in enumerate(blocks):
            cout = width * 2**i
            for j in range(n):
                layers.append(BasicBlock(cin, cout, 2 if (j == 0 and i > 0) else 1, pre_activation))
                cin = cout
        self.layers = nn.Sequential(*layers)
        # pre-activation blocks end un-normalised, so the head adds the last BN-ReLU
        self.head = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU()) if pre_activation else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        if not pre_activation and image_size < 64:
            self.stem = nn.Sequential(self.stem, nn.BatchNorm2d(width), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.layers(self.stem(x)))
        return self.fc(torch.flatten(self.pool(out), 1))


def resnet18(in_channels: int, num_classes: int, image_size: int, width: int = 64) -> nn.Module:
    """ResNet-18 (Guesmi et al.'s CIFAR-10 model)."""
    return ResNet(in_channels, num_classes, (2, 2, 2, 2), pre_activation=False, width=width, image_size=image_size)


def preresnet10(in_channels: int, num_classes: int, image_size: int, width: int = 64) -> nn.Module:
    """Pre-activation ResNet-10 (Moshe et al.'s second model)."""
    return ResNet(in_channels, num_classes, (1, 1, 1, 1), pre_activation=True, width=width, image_size=image_size)


def vgg(
    in_channels: int,
    num_classes: int,
    image_size: int,
    width: int = 64,
    plan: tuple = (1, "M", 2, "M", 4, 4, "M", 8, 8, "M"),
) -> nn.Module:
    """A VGG-style net: 3x3 conv-BN-ReLU stacks (``plan`` in multiples of ``width``)."""
    pools = plan.count("M")
    if image_size < 2**pools:
        raise RobinterpError(
            f"this VGG pools {pools} times and needs images of at least {2**pools} "
            f"pixels, got {image_size}; use a smaller plan or larger images"
        )
    layers: list[nn.Module] = []
    cin, size = in_channels, image_size
    for item in plan:
        if item == "M":
            layers.append(MaxPool2d(2))
            size //= 2
        else:
            cout = item * width
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
    return nn.Sequential(
        *layers,
        nn.Flatten(),
        nn.Linear(cin * size * size, 4 * width),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(4 * width, num_classes),
    )


def vgg19(in_channels: int, num_classes: int, image_size: int, width: int = 64) -> nn.Module:
    """VGG19's sixteen 3x3 conv layers (with BN) and five pools (Moshe et al.'s first model).

    The classifier is ``vgg``'s small head (one hidden layer of 4 x width), not the
    original's two 4096-unit layers, which hold 120M of its 140M parameters.
    """
    return vgg(
        in_channels,
        num_classes,
        image_size,
        width,
        plan=(1, 1, "M", 2, 2, "M", 4, 4, 4, 4, "M", 8, 8, 8, 8, "M", 8, 8, 8, 8, "M"),
    )


MODELS: dict[str, Callable[..., nn.Module]] = {
    "small_cnn": small_cnn,
    "sgt_cnn": sgt_cnn,
    "alexnet28": alexnet28,
    "resnet18": resnet18,
    "preresnet10": preresnet10,
    "vgg": vgg,
    "vgg19": vgg19,
}


def build(
    name: str, dataset: str, *, num_classes: int, shape: tuple[int, int, int], width: int | None = None
) -> nn.Module:
    """A registered model with the data set's normalisation as its first layer."""
    if name not in MODELS:
        raise RobinterpError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    if dataset not in NORMALISATION:
        raise RobinterpError(f"no normalisation for data set {dataset!r}; add it to robinterp.models.NORMALISATION")
    kwargs = {} if width is None else {"width": width}
    body = MODELS[name](shape[0], num_classes, shape[1], **kwargs)
    return nn.Sequential(Normalize(*NORMALISATION[dataset]), body)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode and restore each one's own mode afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


EVAL_BATCH_SIZE = 256
"""Images per evaluation pass (predictions, attacks) unless a caller says otherwise: a memory
bound, and on this project's 2-core CPU also the fastest size measured for the book's small CNN
(a forward pass over the test set 1.9x, a PGD sweep 1.4x faster than at 1000 and 500 images,
whose activations no longer fit the cache). A GPU may want more; the chapters that attack large
networks take theirs from their config."""


@on_model_device
@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE) -> torch.Tensor:
    """Predicted labels, in eval mode, batched."""
    with eval_mode(model):
        return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
