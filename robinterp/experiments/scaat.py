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

from robinterp import data, train
from robinterp import measures as measures_
from robinterp.attacks import AttackSpec
from robinterp.config import ConfigError, param
from robinterp.experiments import common
from robinterp.measures import measure
from robinterp.measures.attack import AttackSettings
from robinterp.measures.background import BackgroundSettings
from robinterp.measures.clean import CleanSettings
from robinterp.measures.quality import QualitySettings
from robinterp.measures.removal import RemovalSettings
from robinterp.methods import MethodEntry, method_table

CHAPTER = "scaat"
# the measures of one saliency map, each one number per image
MAP_METRICS = ("sparseness", "complexity")


@dataclasses.dataclass(frozen=True)
class SCAATConfig(common.ExperimentConfig):
    """Settings of the chapter; the defaults are the `default` profile (CPU, minutes)."""

    dataset: str = param("mnist", choices=tuple(data.DATASETS))
    """First data set: the comparison and the ablation run on it."""
    extra_datasets: tuple[str, ...] = param(("fashion_mnist",), choices=tuple(data.DATASETS))
    """Further data sets on which the comparison is repeated (the abstract: "natural and
    pathological" images; here Fashion-MNIST, whose objects have texture inside them)."""
    train_size: int | None = param(10000, low=1)
    """Training images, a seeded subset; None for all of them (10000: the SGT chapter's, so its
    ST and SGT models come from the cache)."""
    methods: tuple[MethodEntry, ...] = param(
        method_table(
            {
                "ST": {"method": "standard"},
                "PGD-AT": {"method": "pgd_at", "eps": 0.3, "steps": 5, "eps_warmup": 0.25},
                "SGT": {"method": "sgt", "k": 0.5},
                "SCAAT": {"method": "scaat", "eps": 0.3, "steps": 5},
            }
        )
    )
    """The models compared: label -> {method, its parameters}. PGD-AT and SCAAT share the radius,
    steps and warm-up, so that the saliency-shaped budget is the only difference left beside the
    clean loss term; SGT as Ismail et al.'s MNIST setting (k 0.5)."""
    ablation: tuple[MethodEntry, ...] = param(
        method_table(
            {
                "gamma 0": {"method": "scaat", "eps": 0.3, "steps": 5, "gamma": 0.0},
                "gamma 2": {"method": "scaat", "eps": 0.3, "steps": 5, "gamma": 2.0},
                "adaptive": {"method": "scaat", "eps": 0.3, "steps": 5, "adaptive": True},
                "eps 0.15": {"method": "scaat", "eps": 0.15, "steps": 5},
                "adversarial only": {"method": "scaat", "eps": 0.3, "steps": 5, "clean_weight": 0.0},
            }
        )
    )
    """SCAAT variants, each changing one design choice of the SCAAT entry, trained on the first
    data set and compared with it: gamma 0 ignores the saliency, adaptive scales each sample's
    budget by its margin, a smaller budget, no clean loss term."""
    extra_eps: float | None = param(0.1, low=0, low_open=True, high=1)
    """Linf radius of every method that sets one (PGD-AT, SCAAT) on the extra data sets: the book's
    Fashion-MNIST radius, 0.1, where MNIST's is 0.3 (the robust_models and robust_attribution
    chapters train Fashion-MNIST at 0.1; at 0.3 its objects' textures are erased). None: the
    methods' own radius on every data set."""
    ablation_seeds: tuple[int, ...] = param((0, 1, 2), low=0, min_items=1)
    """Seeds of the ablation models, among ``seeds``: the comparisons' own, so that each variant is
    judged against SCAAT over training variance (with one seed its rows are shown, not judged)."""
    epochs: float = param(1.0, low=0, low_open=True)
    """Epochs of every method that does not set its own."""
    lr: float = param(1e-3, low=0, low_open=True)
    """Learning rate of every method that does not set its own (Adam)."""
    eval_size: int = param(500, low=1, high=10000)
    """Test images whose saliency maps are measured (sparseness, complexity, background, accuracy)."""
    faithfulness_size: int = param(200, low=1, high=10000)
    """Test images of the faithfulness measures (FaithfulnessCorrelation, removal curves)."""
    quantus_samples: int = param(20, low=1)
    """Random feature subsets per image in FaithfulnessCorrelation (Quantus: 100)."""
    removal_fractions: tuple[float, ...] = param(
        (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), low=0, high=1, high_open=True, min_items=1
    )
    """Fractions of top-|saliency| features replaced by noise in the removal test."""
    background_threshold: float | None = param(0.1, low=0, high=1)
    """A pixel is background when its brightest channel is at most this (MNIST and Fashion-MNIST
    draw objects on black); None leaves the measure out (natural and pathology images have no
    black background)."""
    accuracy_margin: float = param(1.0, low=0, low_open=True)
    """Points of clean accuracy within which "accuracy is unaffected" holds (ours)."""
    robust_eps: float = param(0.1, low=0, low_open=True, high=1)
    """Linf radius of the PGD accuracy shown for context (the abstract claims no robustness)."""
    pgd_steps: int = param(10, low=1)
    """PGD steps of that evaluation (step 2.5 eps / steps, random start)."""
    saliency_images: int = param(6, low=1, high=32)
    """Test images in the saliency-map grids."""
    ig_steps: int = param(20, low=1)
    """Integrated Gradients steps in the grids (black baseline)."""

    def validate(self) -> None:
        super().validate()
        clash = set(self.labels()) & {e.label for e in self.ablation}
        if clash:
            raise ConfigError(f"ablation labels must differ from the methods' labels; both have {sorted(clash)[0]!r}")
        if not any(e.method == "scaat" for e in self.methods):
            raise ConfigError("methods must list a SCAAT entry (method: scaat): the claims are about it")
        if self.dataset in self.extra_datasets or len(set(self.extra_datasets)) != len(self.extra_datasets):
            raise ConfigError(f"extra_datasets must be distinct and differ from dataset {self.dataset!r}")
        if not set(self.ablation_seeds) <= set(self.seeds):
            raise ConfigError(
                f"ablation_seeds {list(self.ablation_seeds)} must be among seeds {list(self.seeds)}: "
                f"each variant is compared with the SCAAT model of the same seed"
            )
        if not self.removal_fractions or 0.0 not in self.removal_fractions:
            raise ConfigError("removal_fractions must include 0 (the unmasked accuracy)")

    def datasets(self) -> tuple[str, ...]:
        return (self.dataset, *self.extra_datasets)

    def scaat_label(self) -> str:
        """The SCAAT entry the claims and the ablation are about (the first listed)."""
        return next(e.label for e in self.methods if e.method == "scaat")


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
