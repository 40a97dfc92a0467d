"""Chapter "Saliency-constrained adaptive adversarial training" (Xu et al. 2023), a reconstruction.

Standard training (ST), PGD adversarial training, SGT and SCAAT (``robinterp.methods.scaat``,
the book's reading of the abstract) are trained alike on each data set. Their vanilla-gradient
saliency maps are measured for what the abstract claims: sparser (Quantus Sparseness, a Gini
index), less noisy (Quantus Complexity, an entropy; the share of saliency on the background),
more faithful (Quantus FaithfulnessCorrelation; accuracy after removing the top-d% features
against a random ranking), and accuracy kept. An ablation of SCAAT's design choices runs on
the first data set.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import torch

from robinterp import measures as measures_
from robinterp import train
from robinterp.attacks import AttackSpec
from robinterp.configs.scaat import SCAATConfig
from robinterp.experiments import common
from robinterp.measures import measure
from robinterp.measures.attack import AttackSettings
from robinterp.measures.background import BackgroundSettings
from robinterp.measures.clean import CleanSettings
from robinterp.measures.quality import QualitySettings
from robinterp.measures.removal import RemovalSettings
from robinterp.methods import MethodEntry

CHAPTER = "scaat"
# the measures of one saliency map, each one number per image
MAP_METRICS = ("sparseness", "complexity")


Key = tuple[str, str, int]  # (data set, label, seed)


def methods_on(cfg: SCAATConfig, dataset: str) -> tuple[MethodEntry, ...]:
    """The methods as trained on ``dataset``: on an extra data set, every ``eps`` is ``extra_eps``."""
    if dataset == cfg.dataset or cfg.extra_eps is None:
        return cfg.methods
    return tuple(
        dataclasses.replace(entry, params=tuple((k, cfg.extra_eps if k == "eps" else v) for k, v in entry.params))
        for entry in cfg.methods
    )


def specs(cfg: SCAATConfig) -> dict[Key, train.TrainSpec]:
    """Every model: the methods on every data set (at ``extra_eps`` on the extra ones), the
    ablation on the first."""
    grid: dict[Key, train.TrainSpec] = {}
    for dataset in cfg.datasets():
        one = dataclasses.replace(cfg, dataset=dataset, extra_datasets=(), methods=methods_on(cfg, dataset))
        for (label, seed), spec in common.method_grid(one).items():
            grid[dataset, label, seed] = spec
    for seed in cfg.ablation_seeds:
        for entry in cfg.ablation:
            grid[cfg.dataset, entry.label, seed] = common.train_spec(cfg, entry, seed, epochs=cfg.epochs, lr=cfg.lr)
    return grid


def plan(cfg: SCAATConfig) -> common.Plan:
    background = ("background_mass",) if cfg.background_threshold is not None else ()
    return common.Plan(
        specs(cfg), (robust_attack(cfg),), (*MAP_METRICS, "faithfulness_correlation", *background, "removal")
    )


def robust_attack(cfg: SCAATConfig) -> AttackSpec:
    return AttackSpec.of("pgd", steps=cfg.pgd_steps)


def train_all(cfg: SCAATConfig) -> tuple[common.TrainedModels, pd.DataFrame]:
    """Every (dataset, label, seed) model (from the cache where another chapter trained the same
    spec) and their records."""
    trained, keys, tables = {}, {}, []
    grid = specs(cfg)
    for dataset in cfg.datasets():
        models_, records = common.train_grid(
            {(label, seed): spec for (ds, label, seed), spec in grid.items() if ds == dataset}
        )
        for (label, seed), model in models_.items():
            trained[dataset, label, seed] = model
            keys[dataset, label, seed] = models_.cache_keys[label, seed]
        tables.append(records.assign(dataset=dataset))
    return common.TrainedModels(trained, keys), pd.concat(tables, ignore_index=True)


def map_settings(cfg: SCAATConfig, dataset: str) -> tuple[Any, ...]:
    """The measures of one model's maps on ``dataset`` (``robinterp.measures``): sparseness and
    complexity, clean correctness and (with a threshold) the background share on the eval
    subset; FaithfulnessCorrelation on a seeded subset of ``faithfulness_size`` of those images
    (the same images for every model)."""
    found: list[Any] = [
        QualitySettings(dataset, cfg.eval_size, MAP_METRICS, explainer="saliency"),
        QualitySettings(
            dataset,
            cfg.eval_size,
            ("faithfulness_correlation",),
            explainer="saliency",
            samples=cfg.quantus_samples,
            within=cfg.faithfulness_size,
        ),
        CleanSettings(dataset, cfg.eval_size, purpose="explanation_quality"),
    ]
    if cfg.background_threshold is not None:
        found.append(BackgroundSettings(dataset, cfg.eval_size, cfg.background_threshold, "explanation_quality"))
    return tuple(found)


def _as_metric(rows: pd.DataFrame, settings: Any) -> pd.DataFrame:
    """A measure's rows as the chapter's tidy metric, image, score."""
    if isinstance(settings, CleanSettings):
        return rows.rename(columns={"correct": "score"}).assign(metric="accuracy")[["metric", "image", "score"]]
    if isinstance(settings, BackgroundSettings):
        return rows.assign(metric="background_mass")[["metric", "image", "score"]]
    return rows


def measures(cfg: SCAATConfig, trained: common.TrainedModels) -> pd.DataFrame:
    """Every per-image measure of every model (``map_settings``; tidy: metric, image, score,
    dataset, method, seed), each model's rows cached on their own."""
    tables = []
    for (dataset, label, seed), model in trained.items():
        key = trained.cache_keys[dataset, label, seed]
        parts = [
            _as_metric(measure(settings, model, model_key=key, seed=seed, name=f"{label} seed {seed}"), settings)
            for settings in map_settings(cfg, dataset)
        ]
        tables.append(pd.concat(parts, ignore_index=True).assign(dataset=dataset, method=label, seed=seed))
    return pd.concat(tables, ignore_index=True)


def removal(cfg: SCAATConfig, trained: common.TrainedModels) -> pd.DataFrame:
    """Per image: right (0 or 100) after replacing the top d% features by |saliency| with noise,
    and after a random ranking (the SGT paper's test, no retraining; ``robinterp.measures.removal``).
    Tidy: ranking, removed, image, correct, dataset, method, seed."""
    return pd.concat(
        [
            measures_.over_models(
                RemovalSettings(dataset, cfg.faithfulness_size, cfg.removal_fractions),
                _on(trained, dataset),
                trained.cache_keys,
                ("dataset", "method", "seed"),
            )
            for dataset in cfg.datasets()
        ],
        ignore_index=True,
    )


def _on(trained: common.TrainedModels, dataset: str) -> dict[Key, torch.nn.Module]:
    return {key: model for key, model in trained.items() if key[0] == dataset}


def removal_curves(removal_table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (0 to 1) per data set, method, seed, ranking and removed fraction, from the per-image table."""
    return (
        removal_table.groupby(["dataset", "method", "seed", "ranking", "removed"])["correct"]
        .mean()
        .div(100)
        .rename("accuracy")
        .reset_index()
    )


def robustness(cfg: SCAATConfig, trained: common.TrainedModels) -> pd.DataFrame:
    """PGD accuracy at ``robust_eps`` per model, for context (from per-image rows cached per model)."""
    per_image = pd.concat(
        [
            measures_.over_models(
                AttackSettings(
                    dataset,
                    cfg.eval_size,
                    robust_attack(cfg),
                    (cfg.robust_eps,),
                    early_stop=cfg.attack_early_stop,
                ),
                _on(trained, dataset),
                trained.cache_keys,
                ("dataset", "method", "seed"),
            ).assign(attack=robust_attack(cfg).name)
            for dataset in cfg.datasets()
        ],
        ignore_index=True,
    )
    return common.robust_curves(per_image, by=("dataset", "method", "seed"))


def saliency_maps(
    cfg: SCAATConfig,
    trained: dict[Key, torch.nn.Module],
    dataset: str,
    explainer: str,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Images, labels and each listed model's map (first seed) on the same test images."""
    options: dict[str, Any] = {"n_steps": cfg.ig_steps} if explainer == "integrated_gradients" else {}
    models = {label: trained[dataset, label, cfg.seeds[0]] for label in cfg.labels()}
    return common.maps(models, dataset, cfg.saliency_images, explainer, options)
