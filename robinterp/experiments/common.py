"""What every chapter's experiment shares: its methods as a grid of training specs, the seeded
evaluation subsets, the bound attacks, and a dry-run plan (the config they share is
``robinterp.configs.experiment.ExperimentConfig``).

**Adding a chapter**: a config dataclass extending ``ExperimentConfig`` in
``robinterp/configs/<chapter>.py`` (no torch there), the functions that compute its tables in
``robinterp/experiments/<chapter>.py`` (with a ``plan(cfg)`` for ``robinterp run CHAPTER
--check``); its verdicts in
``robinterp/reports/<chapter>.py``; its notebook in ``book/chapters/``; an entry in
``robinterp.chapters.CHAPTERS``, ``_toc.yml`` and each profile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from robinterp import data, device, explain, measures, models, train
from robinterp.attacks import AttackEntry, AttackSpec
from robinterp.configs.experiment import ExperimentConfig
from robinterp.measures.attack import AttackSettings
from robinterp.measures.images import eval_subset
from robinterp.methods import MethodEntry

__all__ = ["eval_subset"]  # the chapters' subsets, from the measures


def train_spec(cfg: ExperimentConfig, entry: MethodEntry, seed: int, *, epochs: float, lr: float) -> train.TrainSpec:
    """The training spec of one listed method and seed; ``epochs`` and ``lr`` are the chapter's,
    which the entry's own replace. The spec alone keys the model cache."""
    epochs, lr = entry.schedule(epochs, lr)
    return train.TrainSpec(
        dataset=cfg.dataset,
        train_size=cfg.train_size,
        model=cfg.model,
        width=cfg.width,
        method=entry.method,
        method_params=entry.params,
        epochs=epochs,
        lr=lr,
        batch_size=cfg.batch_size,
        optimizer=cfg.optimizer,
        seed=seed,
        device=device.resolve(cfg.device),
        precision=cfg.precision,
        torch_compile=cfg.torch_compile,
        accuracy_size=cfg.accuracy_size,
    )


def roar_train_size(cfg: Any) -> int | None:
    """How many training images ROAR retrains on (None: all of the data set's)."""
    sizes = [n for n in (cfg.roar_train_size, cfg.train_size) if n is not None]
    return min(sizes) if sizes else None


def roar_retraining(cfg: Any, seed: int) -> tuple[train.TrainSpec, data.Split]:
    """ROAR's retraining under a chapter's config: the spec (standard training of a fresh network
    of the chapter's architecture, ``roar_epochs`` at ``lr``; it keys the retrained models) and the
    training images, the first ``roar_train_size`` of the chapter's seeded training subset (the
    same seed's permutation, so images the compared models were trained on; the chapter's own
    subset for None or a larger number)."""
    size = roar_train_size(cfg)
    spec = train_spec(cfg, MethodEntry("retrain", "standard"), seed, epochs=cfg.roar_epochs, lr=cfg.lr)
    return dataclasses.replace(spec, train_size=size), data.load(cfg.dataset, "train").subset(size, seed)


def method_grid(cfg: Any) -> dict[tuple[str, int], train.TrainSpec]:
    """(label, seed) -> spec for every listed method and seed, trained from scratch for the
    chapter's ``epochs`` at its ``lr``."""
    return {
        (entry.label, seed): train_spec(cfg, entry, seed, epochs=cfg.epochs, lr=cfg.lr)
        for seed in cfg.seeds
        for entry in cfg.methods
    }


def record(label: str, seed: int, method: str, model: torch.nn.Module, meta: dict[str, Any]) -> dict[str, Any]:
    """One row of a chapter's table of models: its label, the registered method that trained it,
    where it came from, what it took, how accurate."""
    return {
        "method": label,
        "seed": seed,
        "trained_by": method,
        "cache_key": meta["key"],
        "from_cache": meta["from_cache"],
        "train_minutes": meta["wall_seconds"] / 60,
        "test_accuracy": meta["metrics"]["test_accuracy"],
        "parameters": models.count_parameters(model),
    }


class TrainedModels(dict):
    """A chapter's trained models by (label, seed), and each one's cache key in ``cache_keys``:
    what its measures are cached under (``robinterp.measures``)."""

    def __init__(self, models: Mapping[Hashable, torch.nn.Module], cache_keys: Mapping[Hashable, str]) -> None:
        super().__init__(models)
        self.cache_keys = dict(cache_keys)


def train_grid(specs: Mapping[Hashable, train.TrainSpec]) -> tuple[TrainedModels, pd.DataFrame]:
    """Every model of a chapter (keyed by (label, seed)) and a table of their records."""
    first = next(iter(specs.values()))
    train_split, test_split = data.load(first.dataset, "train"), data.load(first.dataset, "test")
    trained, keys, rows = {}, {}, []
    for key, spec in specs.items():
        model, meta = train.trained_model(spec, train_split, test_split)
        trained[key], keys[key] = model, meta["key"]
        rows.append(record(*key, spec.method, model, meta))
    return TrainedModels(trained, keys), pd.DataFrame(rows)


def maps(
    models: Mapping[str, torch.nn.Module],
    dataset: str,
    size: int,
    explainer: str = "saliency",
    options: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """A figure's images (the seeded "maps" subset of ``size`` test images, the same in every
    chapter), their labels and each model's ``explainer`` map of them, by label. ``seed``: the
    global generators are seeded first, so that an explainer that draws from them (GradientSHAP)
    gives the same figure whatever ran before it (which a warm cache changes)."""
    split = eval_subset(dataset, size, "maps")
    if seed is not None:
        torch.manual_seed(seed)
        np.random.seed(seed)
    return (
        split.images,
        split.labels,
        {
            label: explain.explain(model, split.images, split.labels, explainer, **dict(options or {}))
            for label, model in models.items()
        },
    )


def attack_label(cfg: Any, name: str) -> str | None:
    """The label of the first listed attack that runs the registered attack ``name`` (the one a
    paper's claim about, e.g., PGD is judged under), or None when none does."""
    return next((entry.label for entry in cfg.attacks if entry.spec.name == name), None)


def attack_settings(cfg: Any, entry: AttackEntry, batch_size: int = models.EVAL_BATCH_SIZE) -> AttackSettings:
    """The robust-accuracy measure of one listed attack: the config's ``eval_size`` test images
    (the "attacks" subset, the same in every chapter) at each of its Linf ``epsilons``;
    ``batch_size`` images attacked at once."""
    return AttackSettings(
        dataset=cfg.dataset,
        size=cfg.eval_size,
        attack=entry.spec,
        epsilons=cfg.epsilons,
        early_stop=cfg.attack_early_stop,
        batch_size=batch_size,
    )


def attacked_per_image(cfg: Any, trained: TrainedModels, batch_size: int = models.EVAL_BATCH_SIZE) -> pd.DataFrame:
    """Per test image: right (0 or 100) clean and under each listed attack (``cfg.attacks``) at
    each radius, for every model, so that the verdicts pair models image by image
    (``robinterp.reports.rules``); each model's rows under each attack one cache entry. Tidy:
    attack (its label), norm, eps, image, correct, method, seed."""
    tables = [
        measures.over_models(attack_settings(cfg, entry, batch_size), trained, trained.cache_keys).assign(
            attack=entry.label
        )
        for entry in cfg.attacks
    ]
    table = pd.concat(tables, ignore_index=True)
    return table[["attack", *[c for c in table.columns if c != "attack"]]]


def robust_curves(per_image_table: pd.DataFrame, by: tuple[str, ...] = ("method", "seed")) -> pd.DataFrame:
    """Robust accuracy per model (``by``), attack, norm and radius from a per-image table (the
    columns of ``robustness.robust_accuracy``: accuracy, correct, n)."""
    grouped = per_image_table.groupby([*by, "attack", "norm", "eps"], sort=False)["correct"]
    curves = grouped.agg(correct=lambda c: int((c > 0).sum()), n="size").reset_index()
    return curves.assign(accuracy=curves["correct"] / curves["n"])


@dataclasses.dataclass
class Plan:
    """What a run would build, made without data or training (``robinterp run --check``)."""

    specs: dict[Hashable, train.TrainSpec]
    attacks: tuple[AttackSpec, ...]
    metrics: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    fine_tuned: frozenset[Hashable] = frozenset()
    """Keys of ``specs`` whose models the run makes by fine-tuning a listed model as part of its
    evaluation, their spec here a stand-in (the NsLoss chapter's: its protocol picks the weight):
    an estimate counts them in the evaluation a measured run spent, not as training from scratch."""

    def summary(self) -> str:
        methods = sorted({spec.method for spec in self.specs.values()})
        attacks_ = ", ".join(f"{a.name}({', '.join(f'{k}={v}' for k, v in a.options)})" for a in self.attacks)
        lines = [
            f"{len(self.specs)} training specs ({', '.join(methods)}), "
            f"attacks: {attacks_ or 'none'}; metrics: {', '.join(self.metrics) or 'none'}"
        ]
        return "\n".join(lines + [f"note: {note}" for note in self.notes])
