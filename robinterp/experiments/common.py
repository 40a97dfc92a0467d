"""Pieces every chapter's experiment shares: building and training cached models."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Hashable, Mapping

import pandas as pd
import torch

from robinterp import attacks, cache, data, models, train
from robinterp.config import Config, ConfigError, param


@dataclasses.dataclass(frozen=True)
class ExperimentConfig(Config):
    """Fields every chapter shares: data, architecture, seeds."""

    dataset: str = param("mnist", choices=tuple(data.DATASETS))
    """Data set (MNIST and Fashion-MNIST run offline; CIFAR-10 and ImageNette need internet once)."""
    model: str = param("small_cnn", choices=tuple(models.MODELS))
    """Architecture, from robinterp.models.MODELS (a small two-stage CNN on the CPU)."""
    width: int | None = param(16, low=1)
    """First-layer width (None: the architecture's own; 16 halves small_cnn to fit the CPU)."""
    train_size: int | None = param(None, low=1)
    """Training images, a seeded subset; None for all of them."""
    seeds: tuple[int, ...] = param((0, 1, 2), low=0)
    """One model per method per seed; spreads in the chapter are over these."""

    def validate(self) -> None:
        if len(set(self.seeds)) != len(self.seeds) or not self.seeds:
            raise ConfigError(f"seeds must be a non-empty list of distinct integers, "
                              f"got {list(self.seeds)}")


def build_model(spec: train.TrainSpec) -> torch.nn.Module:
    info = data.get_spec(spec.dataset)
    return models.build(spec.model, spec.dataset, num_classes=info.num_classes,
                        shape=info.shape, width=spec.width)


def trained_model(spec: train.TrainSpec, train_split: data.Split | None = None,
                  test_split: data.Split | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """One model: from the cache, or trained on the spec's data and stored."""
    def build() -> torch.nn.Module:
        torch.manual_seed(spec.seed)
        return build_model(spec)

    def fit(model: torch.nn.Module) -> dict[str, Any]:
        split = (train_split or data.load(spec.dataset, "train")).subset(spec.train_size, spec.seed)
        history = train.fit(model, split, spec)
        test = test_split or data.load(spec.dataset, "test")
        return {"history": history.to_dict("records"), "test_accuracy": train.accuracy(model, test)}

    return cache.cached_model(spec, build, fit)


def continued(init_key: str, init_model: torch.nn.Module, finetune: train.TrainSpec,
              train_split: data.Split, test_split: data.Split) -> tuple[torch.nn.Module, dict[str, Any]]:
    """``init_model`` (cached under ``init_key``) trained further by ``finetune``, cached by both."""
    def fit(model: torch.nn.Module) -> dict[str, Any]:
        history = train.fit(model, train_split.subset(finetune.train_size, finetune.seed), finetune)
        return {"history": history.to_dict("records"), "test_accuracy": train.accuracy(model, test_split)}

    key = {"init": init_key, "finetune": dataclasses.asdict(finetune)}
    return cache.cached_model(key, lambda: copy.deepcopy(init_model), fit)


def record(method: str, seed: int, model: torch.nn.Module, meta: dict[str, Any]) -> dict[str, Any]:
    """One row of a chapter's table of models: where it came from, what it took, how accurate."""
    return {"method": method, "seed": seed, "cache_key": meta["key"], "from_cache": meta["from_cache"],
            "train_minutes": meta["wall_seconds"] / 60, "test_accuracy": meta["metrics"]["test_accuracy"],
            "parameters": models.count_parameters(model)}


def train_grid(specs: Mapping[Hashable, train.TrainSpec]) -> tuple[dict[Hashable, torch.nn.Module], pd.DataFrame]:
    """Every model of a chapter (keyed e.g. by (method, seed)) and a table of their records."""
    first = next(iter(specs.values()))
    train_split, test_split = data.load(first.dataset, "train"), data.load(first.dataset, "test")
    trained, rows = {}, []
    for key, spec in specs.items():
        model, meta = trained_model(spec, train_split, test_split)
        trained[key] = model
        rows.append(record(*key, model, meta))
    return trained, pd.DataFrame(rows)


def robust_curves(chapter: str, cfg: Any, trained: Mapping[tuple[str, int], torch.nn.Module],
                  split: data.Split, attack_options: Mapping[str, Mapping[str, Any]],
                  epsilons: tuple[float, ...], batch_size: int = 500) -> pd.DataFrame:
    """Robust accuracy per method, seed, attack and epsilon (tidy), cached by the chapter config;
    ``batch_size`` images are attacked at once (a memory bound)."""
    def compute() -> pd.DataFrame:
        tables = []
        for (method, seed), model in trained.items():
            table = attacks.robust_accuracy(model, split.images, split.labels, epsilons=epsilons,
                                            attacks=attack_options, seed=seed, batch_size=batch_size,
                                            desc=f"attacks on {method} seed {seed}")
            tables.append(table.assign(method=method, seed=seed))
        return pd.concat(tables, ignore_index=True)

    return cache.cached_table({"chapter": chapter, "table": "robust_curves",
                               "config": dataclasses.asdict(cfg)}, compute, code=(__name__,))
