"""The training loop, its spec, and trained models from the cache.

A ``TrainSpec`` is everything that determines a trained model: data, architecture,
method (a unit of ``robinterp.methods``) with its parameters, schedule, seed. Its
hash, with the source of the code the model depends on (``model_code``: this
loop, the models, the data and the method's own module), keys the model cache.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import torch
from torch import nn

from robinterp import RobinterpError, cache, data, models
from robinterp.config import Config, ConfigError, param
from robinterp.methods import get_method, normalise_params
from robinterp.progress import progress as progress_bar

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda params, spec: torch.optim.SGD(
        params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay
    ),
    "adam": lambda params, spec: torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay),
    "adadelta": lambda params, spec: torch.optim.Adadelta(params, lr=spec.lr, weight_decay=spec.weight_decay),
}


# bfloat16 autocast runs on CPUs and on GPUs from Ampere on; float16 would need a loss scaler
PRECISIONS = ("float32", "bfloat16")


class TrainingError(RobinterpError):
    """Training that cannot go on (a non-finite loss)."""


@dataclasses.dataclass(frozen=True)
class TrainSpec(Config):
    """Everything that determines a trained model; its hash keys the model cache."""

    dataset: str = param("mnist", choices=tuple(data.DATASETS))
    """Training data set, from robinterp.data.DATASETS."""
    train_size: int | None = param(None, low=1)
    """Number of training images (a seeded subset); None for the whole set."""
    model: str = param("sgt_cnn", choices=tuple(models.MODELS))
    """Architecture, from robinterp.models.MODELS."""
    width: int | None = param(None, low=1)
    """Width of the first layer; None for the architecture's default."""
    method: str = "standard"
    """Training method, from the registry of robinterp.methods."""
    method_params: tuple[tuple[str, Any], ...] = ()
    """The method's parameters as (name, value) pairs; the method's defaults fill the rest."""
    epochs: float = param(1.0, low=0, low_open=True)
    """Passes over the training set; a fraction trains on that share of the last epoch."""
    batch_size: int = param(128, low=1)
    """Minibatch size."""
    optimizer: str = param("adam", choices=tuple(OPTIMIZERS))
    """Optimiser, from robinterp.train.OPTIMIZERS."""
    lr: float = param(1e-3, low=0, low_open=True)
    """Learning rate."""
    momentum: float = param(0.9, low=0, high=1)
    """SGD momentum."""
    weight_decay: float = param(0.0, low=0)
    """L2 weight decay."""
    seed: int = param(0, low=0)
    """Seed of the initialisation, the shuffling, dropout and random starts."""
    device: str = param("cpu", choices=("cpu", "cuda"))
    """Where the model trains and stays (a chapter's ``device``, resolved where it runs): a model
    trained on a GPU differs in the last digits, so it keys a cache entry of its own."""
    precision: str = param("float32", choices=PRECISIONS)
    """Arithmetic of the training passes: float32, or bfloat16 autocast (the weights and the
    optimiser stay float32)."""
    torch_compile: bool = False
    """Train through ``torch.compile(model)``; the stored weights are the model's own."""
    accuracy_size: int | None = param(None, low=1)
    """Test images (a seeded subset, the same for every model) on which the trained model's
    recorded test accuracy is measured; None for the whole test set."""

    def validate(self) -> None:
        names = [name for name, _ in self.method_params]
        if len(set(names)) != len(names):
            raise ConfigError(f"method_params names a parameter twice: {names}")
        # one spelling per spec (complete, typed, sorted), so equal specs hash equal
        object.__setattr__(
            self, "method_params", normalise_params(self.method, dict(self.method_params), f"method {self.method!r}")
        )

    @property
    def params(self) -> Config:
        """The method's parameters dataclass."""
        return get_method(self.method).params(**dict(self.method_params))


def model_code(spec: TrainSpec) -> tuple[str, ...]:
    """The modules whose source (with what they import) keys a model trained by ``spec``:
    this loop (and through it the models and the data) and the method's own module."""
    return (__name__, *get_method(spec.method).modules)


ACCURACY_SUBSET_SEED = 0
"""Seed of the test subset of ``accuracy_size``: one subset for every model, so their recorded
accuracies compare."""


def recorded_accuracy(model: nn.Module, spec: TrainSpec, test: data.Split) -> float:
    """The test accuracy a trained model's cache entry records: on ``spec.accuracy_size`` test images."""
    return accuracy(model, test.subset(spec.accuracy_size, ACCURACY_SUBSET_SEED))


def make_optimizer(spec: TrainSpec, model: nn.Module) -> torch.optim.Optimizer:
    return OPTIMIZERS[spec.optimizer](model.parameters(), spec)


@torch.inference_mode()
def accuracy(model: nn.Module, split: data.Split, batch_size: int = models.EVAL_BATCH_SIZE) -> float:
    """Clean accuracy in eval mode."""
    return float((models.predict(model, split.images, batch_size) == split.labels).float().mean())


def fit(
    model: nn.Module,
    train: data.Split,
    spec: TrainSpec,
    *,
    validation: data.Split | None = None,
    desc: str | None = None,
) -> pd.DataFrame:
    """Train ``model`` in place by ``spec``; return the per-epoch history.

    The history has one row per epoch: loss, running training accuracy (on the
    inputs the loss saw, adversarial ones for adversarial training), validation
    accuracy when ``validation`` is given, and wall time.
    """
    method = get_method(spec.method)
    model.to(spec.device)
    # what a method needs besides the batch, made once per run (a teacher model, say)
    context = method.prepare(spec, _cached_model) if method.prepare is not None else {}
    loss_fn, params = method.loss, spec.params
    torch.manual_seed(spec.seed)  # dropout and attack random starts draw from the global RNG
    optimizer = make_optimizer(spec, model)
    forward = torch.compile(model) if spec.torch_compile else model  # shares the model's parameters
    autocast = torch.autocast(spec.device, dtype=torch.bfloat16, enabled=spec.precision == "bfloat16")
    batches_per_epoch = math.ceil(len(train) / spec.batch_size)
    total_steps = max(1, round(spec.epochs * batches_per_epoch))
    label = desc or f"{spec.method} seed {spec.seed}"
    rows, step = [], 0
    for epoch in range(math.ceil(total_steps / batches_per_epoch)):
        steps_now = min(batches_per_epoch, total_steps - step)
        loss_sum, correct, seen, start = 0.0, 0, 0, time.perf_counter()
        batches = itertools.islice(
            train.batches(spec.batch_size, shuffle=True, seed=spec.seed * 1000 + epoch), steps_now
        )
        bar = progress_bar(batches, desc=f"{label} epoch {epoch + 1}", total=steps_now)
        model.train()
        for i, (xb, yb) in enumerate(bar):
            xb, yb = xb.to(spec.device, non_blocking=True), yb.to(spec.device, non_blocking=True)
            with autocast:
                loss, logits = loss_fn(forward, xb, yb, params, progress=step / total_steps, **context)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"{label}: the loss became {loss.item()} at epoch {epoch + 1}, batch {i + 1}; "
                    f"lower the learning rate (now {spec.lr}) or the method's weight"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_sum += loss.item() * len(yb)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(yb)
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(f"loss {loss_sum / seen:.3f} acc {correct / seen:.3f}")
        row = {
            "epoch": epoch + 1,
            "loss": loss_sum / seen,
            "train_accuracy": correct / seen,
            "seconds": time.perf_counter() - start,
        }
        if validation is not None:
            row["val_accuracy"] = accuracy(model, validation)
        rows.append(row)
    broken = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if broken:
        raise TrainingError(
            f"{label}: weights {', '.join(broken[:3])} became non-finite; lower the learning rate (now {spec.lr})"
        )
    model.eval()
    return pd.DataFrame(rows)


def build_model(spec: TrainSpec) -> nn.Module:
    """The untrained network of ``spec`` (seed it first for a reproducible initialisation)."""
    info = data.get_spec(spec.dataset)
    return models.build(spec.model, spec.dataset, num_classes=info.num_classes, shape=info.shape, width=spec.width)


def trained_model(
    spec: TrainSpec, train_split: data.Split | None = None, test_split: data.Split | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """One model: from the cache, or trained on the spec's data and stored."""

    def build() -> nn.Module:
        torch.manual_seed(spec.seed)
        return build_model(spec)

    def train_it(model: nn.Module) -> dict[str, Any]:
        split = (train_split or data.load(spec.dataset, "train")).subset(spec.train_size, spec.seed)
        history = fit(model, split, spec)
        test = test_split or data.load(spec.dataset, "test")
        return {"history": history.to_dict("records"), "test_accuracy": recorded_accuracy(model, spec, test)}

    model, meta = cache.cached_model(spec, build, train_it, code=model_code(spec))
    return model.to(spec.device), meta


def continued(
    init_key: str, init_model: nn.Module, finetune: TrainSpec, train_split: data.Split, test_split: data.Split
) -> tuple[nn.Module, dict[str, Any]]:
    """``init_model`` (cached under ``init_key``) trained further by ``finetune``, cached by both."""

    def train_it(model: nn.Module) -> dict[str, Any]:
        history = fit(model, train_split.subset(finetune.train_size, finetune.seed), finetune)
        return {"history": history.to_dict("records"), "test_accuracy": recorded_accuracy(model, finetune, test_split)}

    key = {"init": init_key, "finetune": dataclasses.asdict(finetune)}
    model, meta = cache.cached_model(key, lambda: copy.deepcopy(init_model), train_it, code=model_code(finetune))
    return model.to(finetune.device), meta


def _cached_model(spec: TrainSpec) -> nn.Module:
    """The model of ``spec`` from the cache (trained there first if needed): what a method's
    ``prepare`` gets to build a teacher with."""
    return trained_model(spec)[0]
