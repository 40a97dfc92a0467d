"""Training methods (one loss function each, one signature) and the training loop.

A method is ``loss(model, x, y, *, progress, **params) -> (loss, logits)``:
``progress`` is the fraction of training done (for warm-ups), ``params`` the
method's hyperparameters, ``logits`` those the loss was computed on (for the
running accuracy). Chapters register their own methods in ``METHODS``.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import math
import time
from typing import Any, Callable

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from robinterp import RobinterpError, attacks, saliency_guided, sensitivity
from robinterp.config import Config, ConfigError, coerce, param
from robinterp.data import Split
from robinterp.progress import progress as progress_bar

LossOutput = tuple[torch.Tensor, torch.Tensor]
Method = Callable[..., LossOutput]


class TrainingError(RobinterpError):
    """Training that cannot go on (a non-finite loss)."""


def ramped(eps: float, progress: float, warmup: float) -> float:
    """eps grown linearly from 0 over the first ``warmup`` fraction of training.

    PGD training on MNIST at eps 0.3 from scratch collapses to chance (seen
    here); a ramp over the first half epoch avoids it.
    """
    return eps if warmup <= 0 else eps * min(1.0, progress / warmup)


def standard(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, progress: float) -> LossOutput:
    """Cross-entropy on clean inputs."""
    logits = model(x)
    return F.cross_entropy(logits, y), logits


def fgsm_at(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, progress: float,
            eps: float = 0.3, clean_weight: float = 0.5, eps_warmup: float = 0.0) -> LossOutput:
    """FGSM adversarial training (Goodfellow et al. 2015).

    loss = w CE(x) + (1 - w) CE(FGSM(x)); Goodfellow et al. use w = 0.5.
    """
    x_adv = attacks.fgsm(model, x, y, eps=ramped(eps, progress, eps_warmup))
    logits_adv = model(x_adv)
    loss = (1 - clean_weight) * F.cross_entropy(logits_adv, y)
    if clean_weight > 0:
        loss = loss + clean_weight * F.cross_entropy(model(x), y)
    return loss, logits_adv


def pgd_at(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, progress: float,
           eps: float = 0.3, steps: int = 7, step_size: float | None = None,
           norm: str = "linf", eps_warmup: float = 0.0) -> LossOutput:
    """PGD adversarial training (Madry et al. 2018): CE on PGD samples only."""
    eps_now = ramped(eps, progress, eps_warmup)
    alpha = None if step_size is None or eps == 0 else step_size * eps_now / eps
    x_adv = attacks.pgd(model, x, y, eps=eps_now, norm=norm, steps=steps, step_size=alpha)
    logits = model(x_adv)
    return F.cross_entropy(logits, y), logits


METHODS: dict[str, Method] = {"standard": standard, "fgsm_at": fgsm_at, "pgd_at": pgd_at,
                              "sgt": saliency_guided.sgt, "sga": saliency_guided.sga,
                              "asgt": saliency_guided.asgt, "nsloss": sensitivity.nsloss,
                              "jacobian_reg": sensitivity.jacobian_reg}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"unknown training method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]


def check_method_params(name: str, params: dict[str, Any]) -> None:
    """Unknown hyperparameters of a method are a one-line error."""
    accepted = [p for p in inspect.signature(get_method(name)).parameters
                if p not in ("model", "x", "y", "progress")]
    for key in params:
        if key not in accepted:
            raise ConfigError(f"method {name!r} has no parameter {key!r}; "
                              f"it accepts {', '.join(accepted) or 'none'}")


@dataclasses.dataclass(frozen=True)
class TrainSpec(Config):
    """Everything that determines a trained model; its hash keys the model cache."""

    dataset: str = param("mnist", choices=("mnist", "fashion_mnist", "cifar10"))
    """Training data set."""
    train_size: int | None = param(None, low=1)
    """Number of training images (a seeded subset); None for the whole set."""
    model: str = param("sgt_cnn", choices=("small_cnn", "sgt_cnn", "alexnet28", "resnet18", "preresnet10", "vgg"))
    """Architecture, from robinterp.models.MODELS."""
    width: int | None = param(None, low=1)
    """Width of the first layer; None for the architecture's default."""
    method: str = "standard"
    """Training method, from robinterp.train.METHODS."""
    method_params: tuple[tuple[str, Any], ...] = ()
    """The method's hyperparameters as (name, value) pairs."""
    epochs: float = param(1.0, low=0, low_open=True)
    """Passes over the training set; a fraction trains on that share of the last epoch."""
    batch_size: int = param(128, low=1)
    """Minibatch size."""
    optimizer: str = param("adam", choices=("sgd", "adam", "adadelta"))
    """Optimiser."""
    lr: float = param(1e-3, low=0, low_open=True)
    """Learning rate."""
    momentum: float = param(0.9, low=0, high=1)
    """SGD momentum."""
    weight_decay: float = param(0.0, low=0)
    """L2 weight decay."""
    seed: int = param(0, low=0)
    """Seed of the initialisation, the shuffling, dropout and random starts."""

    def validate(self) -> None:
        names = [name for name, _ in self.method_params]
        if len(set(names)) != len(names):
            raise ConfigError(f"method_params names a parameter twice: {names}")
        check_method_params(self.method, dict(self.method_params))
        # one spelling per spec, so equal specs hash equal: sorted, values as the defaults' types
        defaults = inspect.signature(get_method(self.method)).parameters
        typed = []
        for name, value in sorted(self.method_params):
            default = defaults[name].default
            if type(default) in (int, float, str, bool):
                value = coerce(f"method_params.{name}", value, type(default))
            typed.append((name, value))
        object.__setattr__(self, "method_params", tuple(typed))

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.method_params)


def make_optimizer(spec: TrainSpec, model: nn.Module) -> torch.optim.Optimizer:
    if spec.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum,
                               weight_decay=spec.weight_decay)
    if spec.optimizer == "adadelta":
        return torch.optim.Adadelta(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)


@torch.inference_mode()
def accuracy(model: nn.Module, split: Split, batch_size: int = 1000) -> float:
    """Clean accuracy in eval mode."""
    return float((attacks.predict(model, split.images, batch_size) == split.labels).float().mean())


def fit(model: nn.Module, train: Split, spec: TrainSpec, *, validation: Split | None = None,
        desc: str | None = None) -> pd.DataFrame:
    """Train ``model`` in place by ``spec``; return the per-epoch history.

    The history has one row per epoch: loss, running training accuracy (on the
    inputs the loss saw, adversarial ones for adversarial training), validation
    accuracy when ``validation`` is given, and wall time.
    """
    loss_fn = get_method(spec.method)
    torch.manual_seed(spec.seed)  # dropout and attack random starts draw from the global RNG
    optimizer = make_optimizer(spec, model)
    batches_per_epoch = math.ceil(len(train) / spec.batch_size)
    total_steps = max(1, round(spec.epochs * batches_per_epoch))
    label = desc or f"{spec.method} seed {spec.seed}"
    rows, step = [], 0
    for epoch in range(math.ceil(total_steps / batches_per_epoch)):
        steps_now = min(batches_per_epoch, total_steps - step)
        loss_sum, correct, seen, start = 0.0, 0, 0, time.perf_counter()
        batches = itertools.islice(
            train.batches(spec.batch_size, shuffle=True, seed=spec.seed * 1000 + epoch), steps_now)
        bar = progress_bar(batches, desc=f"{label} epoch {epoch + 1}", total=steps_now)
        model.train()
        for i, (xb, yb) in enumerate(bar):
            loss, logits = loss_fn(model, xb, yb, progress=step / total_steps, **spec.params)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"{label}: the loss became {loss.item()} at epoch {epoch + 1}, batch {i + 1}; "
                    f"lower the learning rate (now {spec.lr}) or the method's weight")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_sum += loss.item() * len(yb)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(yb)
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(f"loss {loss_sum / seen:.3f} acc {correct / seen:.3f}")
        row = {"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy": correct / seen,
               "seconds": time.perf_counter() - start}
        if validation is not None:
            row["val_accuracy"] = accuracy(model, validation)
        rows.append(row)
    broken = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if broken:
        raise TrainingError(f"{label}: weights {', '.join(broken[:3])} became non-finite; "
                            f"lower the learning rate (now {spec.lr})")
    model.eval()
    return pd.DataFrame(rows)
