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

from robinterp import cache, data, explain, explanation_quality, metrics, models, train
from robinterp.attacks import AttackSpec
from robinterp.config import ConfigError, param
from robinterp.experiments import common
from robinterp.methods import MethodEntry, method_table
from robinterp.robustness import robust_accuracy

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
    ablation_seeds: tuple[int, ...] = param((0, 1, 2), low=0)
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
        (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), low=0, high=1, high_open=True
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


def train_all(cfg: SCAATConfig) -> tuple[dict[Key, torch.nn.Module], pd.DataFrame]:
    """Every model (from the cache where another chapter trained the same spec) and their records."""
    trained: dict[Key, torch.nn.Module] = {}
    tables = []
    grid = specs(cfg)
    for dataset in cfg.datasets():
        models_, records = common.train_grid(
            {(label, seed): spec for (ds, label, seed), spec in grid.items() if ds == dataset}
        )
        trained.update({(dataset, label, seed): model for (label, seed), model in models_.items()})
        tables.append(records.assign(dataset=dataset))
    return trained, pd.concat(tables, ignore_index=True)


def _map_scores(cfg: SCAATConfig, model: torch.nn.Module, dataset: str, seed: int) -> pd.DataFrame:
    """Per image: sparseness, complexity, background mass and correctness on the eval subset, and
    FaithfulnessCorrelation on a seeded subset of ``faithfulness_size`` of those images (the same
    images for every model)."""
    split = common.eval_subset(dataset, cfg.eval_size, "explanation_quality")
    quality = explanation_quality.scores(
        model, split.images, split.labels, MAP_METRICS, explainer="saliency", seed=seed
    )
    correct = (models.predict(model, split.images) == split.labels).float()
    images = range(len(split))
    few = split.subset(min(cfg.faithfulness_size, len(split)), seed=0)
    faithful = explanation_quality.scores(
        model,
        few.images,
        few.labels,
        ("faithfulness_correlation",),
        explainer="saliency",
        samples=cfg.quantus_samples,
        seed=seed,
    )
    tables = [
        quality,
        faithful,
        pd.DataFrame({"metric": "accuracy", "image": images, "score": (100 * correct).tolist()}),
    ]
    if cfg.background_threshold is not None:
        saliency = explain.explain(model, split.images, split.labels, "saliency")
        background = metrics.background_mass(saliency, split.images, cfg.background_threshold)
        tables.append(pd.DataFrame({"metric": "background_mass", "image": images, "score": background.tolist()}))
    return pd.concat(tables, ignore_index=True)


def measures(cfg: SCAATConfig, trained: dict[Key, torch.nn.Module]) -> pd.DataFrame:
    """Every per-image measure of every model (tidy: dataset, method, seed, metric, image, score),
    cached by the chapter config."""

    def compute() -> pd.DataFrame:
        return pd.concat(
            [
                _map_scores(cfg, model, dataset, seed).assign(dataset=dataset, method=label, seed=seed)
                for (dataset, label, seed), model in trained.items()
            ],
            ignore_index=True,
        )

    return cache.cached_table(
        {"chapter": CHAPTER, "table": "measures", "config": dataclasses.asdict(cfg)},
        compute,
        code=common.table_code(__name__, cfg),
    )


def removal(cfg: SCAATConfig, trained: dict[Key, torch.nn.Module]) -> pd.DataFrame:
    """Per image: is it still classified right after replacing the top d% features by |saliency|
    with noise, and after a random ranking (the SGT paper's test, no retraining)? Tidy: dataset,
    method, seed, ranking, removed, image, correct; cached by the chapter config."""

    def compute() -> pd.DataFrame:
        tables = []
        for (dataset, label, seed), model in trained.items():
            split = common.eval_subset(dataset, cfg.faithfulness_size, "removal")
            saliency = explain.explain(model, split.images, split.labels, "saliency")
            for ranking in ("saliency", "random"):
                correct = metrics.correct_after_removal(
                    model,
                    split.images,
                    split.labels,
                    saliency,
                    cfg.removal_fractions,
                    random_ranking=ranking == "random",
                    seed=seed,
                )
                frame = pd.DataFrame(correct.numpy(), index=list(cfg.removal_fractions)).stack()
                frame = frame.rename_axis(["removed", "image"]).rename("correct").reset_index()
                tables.append(
                    frame.assign(
                        dataset=dataset, method=label, seed=seed, ranking=ranking, correct=frame["correct"].astype(int)
                    )
                )
        return pd.concat(tables, ignore_index=True)

    return cache.cached_table(
        {"chapter": CHAPTER, "table": "removal", "config": dataclasses.asdict(cfg)},
        compute,
        code=common.table_code(__name__, cfg),
    )


def removal_curves(removal_table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per data set, method, seed, ranking and removed fraction, from the per-image table."""
    return (
        removal_table.groupby(["dataset", "method", "seed", "ranking", "removed"])["correct"]
        .mean()
        .rename("accuracy")
        .reset_index()
    )


def robustness(cfg: SCAATConfig, trained: dict[Key, torch.nn.Module]) -> pd.DataFrame:
    """PGD accuracy at ``robust_eps`` per model, for context (cached by the chapter config)."""

    def compute() -> pd.DataFrame:
        tables = []
        for (dataset, label, seed), model in trained.items():
            split = common.eval_subset(dataset, cfg.eval_size, "attacks")
            table = robust_accuracy(
                model,
                split.images,
                split.labels,
                attacks=(robust_attack(cfg),),
                epsilons=(cfg.robust_eps,),
                seed=seed,
                early_stop=cfg.attack_early_stop,
                desc=f"PGD on {label} ({dataset}) seed {seed}",
            )
            tables.append(table.assign(dataset=dataset, method=label, seed=seed))
        return pd.concat(tables, ignore_index=True)

    return cache.cached_table(
        {"chapter": CHAPTER, "table": "robustness", "config": dataclasses.asdict(cfg)},
        compute,
        code=common.table_code(__name__, cfg),
    )


def saliency_maps(
    cfg: SCAATConfig,
    trained: dict[Key, torch.nn.Module],
    dataset: str,
    explainer: str,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Images, labels and each listed model's map (first seed) on the same test images."""
    split = common.eval_subset(dataset, cfg.saliency_images, "maps")
    options: dict[str, Any] = {"n_steps": cfg.ig_steps} if explainer == "integrated_gradients" else {}
    return (
        split.images,
        split.labels,
        {
            label: explain.explain(
                trained[dataset, label, cfg.seeds[0]], split.images, split.labels, explainer, **options
            )
            for label in cfg.labels()
        },
    )
