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
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from robinterp import RobinterpError, cache, codehash, data, models
from robinterp.config import Config, ConfigError, param
from robinterp.methods import get_method, normalise_params
from robinterp.progress import progress as progress_bar
from robinterp.settings.choices import PRECISIONS

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda params, spec: torch.optim.SGD(
        params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay
    ),
    "adam": lambda params, spec: torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay),
    "adadelta": lambda params, spec: torch.optim.Adadelta(params, lr=spec.lr, weight_decay=spec.weight_decay),
}


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
    return run(model, train, spec, validation=validation, desc=desc)[0]


@dataclasses.dataclass
class LoopState:
    """Where a run stands after ``step`` optimiser steps: what a longer run of the same trajectory
    needs to go on exactly as if it had not stopped (the weights are the model's own)."""

    step: int
    optimizer: dict[int, dict[str, torch.Tensor]]
    """The optimiser's per-parameter state (Adam's moments and step count...), by parameter index."""
    rng: torch.Tensor
    """torch's CPU generator (dropout, attacks' random starts), and the GPU's when it trains there."""
    rng_cuda: torch.Tensor | None
    epoch_sums: tuple[float, int, int, float]
    """The unfinished epoch's loss sum, right predictions, images seen and seconds (zeros at an
    epoch's end)."""
    history: list[dict[str, Any]]
    """The finished epochs' rows."""

    def tensors(self) -> dict[str, torch.Tensor]:
        """As named tensors (a safetensors file); the history goes in the entry's metadata."""
        found = {"step": torch.tensor(self.step), "rng": self.rng}
        if self.rng_cuda is not None:
            found["rng_cuda"] = self.rng_cuda
        found["epoch_loss"] = torch.tensor(self.epoch_sums[0], dtype=torch.float64)
        found["epoch_counts"] = torch.tensor(self.epoch_sums[1:3], dtype=torch.int64)
        found["epoch_seconds"] = torch.tensor(self.epoch_sums[3], dtype=torch.float64)
        for index, values in self.optimizer.items():
            for name, value in values.items():
                found[f"optimizer.{index}.{name}"] = value.detach().cpu().contiguous()
        return found

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], history: list[dict[str, Any]]) -> LoopState:
        optimizer: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                optimizer.setdefault(int(index), {})[name] = value
        correct, seen = (int(v) for v in tensors["epoch_counts"])
        sums = (float(tensors["epoch_loss"]), correct, seen, float(tensors["epoch_seconds"]))
        return cls(int(tensors["step"]), optimizer, tensors["rng"], tensors.get("rng_cuda"), sums, history)


def run(
    model: nn.Module,
    train: data.Split,
    spec: TrainSpec,
    *,
    validation: data.Split | None = None,
    desc: str | None = None,
    resume: LoopState | None = None,
) -> tuple[pd.DataFrame, LoopState]:
    """``fit``, from ``resume`` when given (``model`` then holds the weights it stopped at); also
    returns where the run stopped, so that a longer run of the same trajectory can go on from it.

    A resumed run takes the same steps as one from the start: the data order is seeded per epoch,
    the optimiser's state and the generators are restored, and the method's steps do not depend on
    the budget (``Method.budget_dependence``, checked by the caller).
    """
    method = get_method(spec.method)
    model.to(spec.device)
    # what a method needs besides the batch, made once per run (a teacher model, say)
    context = method.prepare(spec, _cached_model) if method.prepare is not None else {}
    loss_fn, params = method.loss, spec.params
    optimizer = make_optimizer(spec, model)
    if resume is None:
        torch.manual_seed(spec.seed)  # dropout and attack random starts draw from the global RNG
    else:
        optimizer.load_state_dict({"state": resume.optimizer, "param_groups": optimizer.state_dict()["param_groups"]})
        torch.set_rng_state(resume.rng)
        if resume.rng_cuda is not None:
            torch.cuda.set_rng_state(resume.rng_cuda)
    forward = torch.compile(model) if spec.torch_compile else model  # shares the model's parameters
    autocast = torch.autocast(spec.device, dtype=torch.bfloat16, enabled=spec.precision == "bfloat16")
    batches_per_epoch = math.ceil(len(train) / spec.batch_size)
    total_steps = max(1, round(spec.epochs * batches_per_epoch))
    label = desc or f"{spec.method} seed {spec.seed}"
    step = resume.step if resume is not None else 0
    rows = list(resume.history) if resume is not None else []
    sums = resume.epoch_sums if resume is not None else (0.0, 0, 0, 0.0)
    for epoch in range(step // batches_per_epoch, math.ceil(total_steps / batches_per_epoch)):
        done = step - epoch * batches_per_epoch  # steps of this epoch a resumed run already took
        steps_now = min(batches_per_epoch, total_steps - epoch * batches_per_epoch)
        (loss_sum, correct, seen, earlier), start = (sums if done else (0.0, 0, 0, 0.0)), time.perf_counter()
        batches = itertools.islice(
            train.batches(spec.batch_size, shuffle=True, seed=spec.seed * 1000 + epoch), done, steps_now
        )
        bar = progress_bar(batches, desc=f"{label} epoch {epoch + 1}", total=steps_now - done)
        model.train()
        for i, (xb, yb) in enumerate(bar, start=done):
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
        seconds = earlier + time.perf_counter() - start
        row = {"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy": correct / seen, "seconds": seconds}
        if validation is not None:
            row["val_accuracy"] = accuracy(model, validation)
        rows.append(row)
        sums = (loss_sum, correct, seen, seconds)
    broken = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if broken:
        raise TrainingError(
            f"{label}: weights {', '.join(broken[:3])} became non-finite; lower the learning rate (now {spec.lr})"
        )
    model.eval()
    finished = step % batches_per_epoch == 0
    state = LoopState(
        step,
        {int(k): v for k, v in optimizer.state_dict()["state"].items()},
        torch.get_rng_state(),
        torch.cuda.get_rng_state() if spec.device == "cuda" else None,
        (0.0, 0, 0, 0.0) if finished else sums,
        rows if finished else rows[:-1],
    )
    return pd.DataFrame(rows), state


def build_model(spec: TrainSpec) -> nn.Module:
    """The untrained network of ``spec`` (seed it first for a reproducible initialisation)."""
    info = data.get_spec(spec.dataset)
    return models.build(spec.model, spec.dataset, num_classes=info.num_classes, shape=info.shape, width=spec.width)


RESUME_FILE = "resume.safetensors"
"""A model entry's ``LoopState``: where its training stopped, for a longer run to go on from."""


def total_steps(spec: TrainSpec, n_images: int) -> int:
    """The optimiser steps ``spec`` takes on ``n_images`` training images."""
    return max(1, round(spec.epochs * math.ceil(n_images / spec.batch_size)))


def trajectory_key(spec: TrainSpec) -> str:
    """What a run's steps depend on: its spec but the epochs, and its code. Two runs with this key
    whose method's steps do not depend on the budget take the same steps as far as both go."""
    fields = {name: value for name, value in dataclasses.asdict(spec).items() if name != "epochs"}
    return codehash.stable_hash({"trajectory": fields}, code=model_code(spec))


def budget_dependence(spec: TrainSpec) -> str:
    """Why a longer run of ``spec`` is not a shorter one continued ("" when it is)."""
    method = get_method(spec.method)
    if method.budget_dependence is None:
        return f"method {spec.method!r} does not state whether its steps depend on the training budget"
    return method.budget_dependence(spec)


def _stop_to_resume(spec: TrainSpec, n_images: int) -> tuple[str, dict[str, torch.Tensor], LoopState] | None:
    """The longest cached run of ``spec``'s trajectory that stopped before ``spec`` ends: its key,
    weights and loop state; None when there is none. Only for a method whose steps do not depend
    on the budget (the caller checks)."""
    steps, per_epoch = total_steps(spec, n_images), math.ceil(n_images / spec.batch_size)
    for step, key in sorted(cache.stops(trajectory_key(spec)).items(), reverse=True):
        found = cache.intact_entry("models", key) if step < steps else None
        if found is None or RESUME_FILE not in found[1]["files"]:
            continue
        folder, meta = found
        history = meta["metrics"]["history"][: step // per_epoch]  # its unfinished epoch is redone
        state = LoopState.from_tensors(load_file(str(folder / RESUME_FILE)), history)
        weights = load_file(str(folder / "weights.safetensors"))
        return key, weights, state
    return None


def trained_model(
    spec: TrainSpec, train_split: data.Split | None = None, test_split: data.Split | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """One model: from the cache, or trained on the spec's data and stored. A run whose method's
    steps do not depend on the budget continues the longest cached shorter run of the same
    trajectory (``continued_from`` in its metadata) and takes exactly the steps it would have from
    the start; its own stop is noted for longer runs to continue (only then: a run whose steps
    depend on its budget is never continued, so it keeps no loop state)."""
    stopped: list[LoopState] = []
    dependence = budget_dependence(spec)

    def build() -> nn.Module:
        torch.manual_seed(spec.seed)
        return build_model(spec)

    def train_it(model: nn.Module) -> dict[str, Any]:
        split = (train_split or data.load(spec.dataset, "train")).subset(spec.train_size, spec.seed)
        start = None if dependence else _stop_to_resume(spec, len(split))
        if start is not None:
            model.load_state_dict(start[1])
        history, state = run(model, split, spec, resume=start[2] if start else None)
        stopped.append(state)
        test = test_split or data.load(spec.dataset, "test")
        return {
            "history": history.to_dict("records"),
            "test_accuracy": recorded_accuracy(model, spec, test),
            "continued_from": start[0] if start else None,
            "budget_dependence": dependence,
        }

    def save_stop(folder: Path) -> None:
        save_file(stopped[-1].tensors(), str(folder / RESUME_FILE))

    model, meta = cache.cached_model(
        spec, build, train_it, code=model_code(spec), save_more=None if dependence else save_stop
    )
    if not meta["from_cache"] and not dependence:
        cache.note_stop(trajectory_key(spec), stopped[-1].step, meta["key"])
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
