"""Pieces every chapter's experiment shares: building and training cached models."""

from __future__ import annotations

from typing import Any

import torch

from robinterp import cache, data, models, train


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
