"""Chapter "One protocol for every method": the book's benchmark and the reproduction scoreboard.

Every training method of the four papers is trained on the same data, network, budget and
seeds (the spec the other chapters use on MNIST, so that most models come from their caches),
then measured the same way: clean and robust accuracy (FGSM, PGD, MI-FGSM at two radii;
AutoAttack on a subset), the seven Quantus metrics of one explainer, the remove-top-d%
faithfulness gap, ROAD, ROAR and Etmann et al.'s alignment, each per test image, and the
training cost per epoch relative to standard training, timed in the same run. The same
models are trained on to a larger budget (every seed; continued from the chapter's models where
a method's steps do not depend on the budget, ``robinterp.train``) to see which orderings survive.

Every per-image measure of a model is one cache entry keyed by the model's own cache key and
the settings the measure reads, so listing one more method computes only its rows.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Hashable

import pandas as pd
import torch

from robinterp import data, explanation_quality, roar, train
from robinterp.configs.synthesis import SynthesisConfig
from robinterp.experiments import benchmark_measures, common
from robinterp.experiments.benchmark_measures import robust_name
from robinterp.titles import attack_title, metric_title

CHAPTER = benchmark_measures.CHAPTER
ROBUSTNESS, INTERPRETABILITY, COST = "robustness", "interpretability", "cost"


@dataclasses.dataclass(frozen=True)
class Measure:
    """One column of the benchmark: its name in the tables, what it is and which way is better."""

    name: str
    title: str
    kind: str
    higher_is_better: bool
    digits: int = 1
    """Decimals the benchmark table shows (accuracies and gaps in points: 1)."""
    metric: str | None = None
    """The explanation metric behind the column (``robinterp.explanation_quality``), if one is."""

    @property
    def header(self) -> str:
        return f"{self.title} {'↑' if self.higher_is_better else '↓'}"


# the benchmark table's headers shorten the longest metric titles, so that 19 columns fit the page
SHORT_METRIC_TITLES = {
    "local_lipschitz": "local Lipschitz",
    "faithfulness_correlation": "faithfulness corr.",
    "faithfulness_estimate": "faithfulness est.",
}


def measures(cfg: SynthesisConfig) -> tuple[Measure, ...]:
    """The benchmark's columns, in the order the table shows them."""
    found = [Measure("clean", "clean acc.", ROBUSTNESS, True)]
    for entry in cfg.attacks:
        found += [
            Measure(robust_name(entry.label, eps), f"{attack_title(entry.label)} {eps:g}", ROBUSTNESS, True)
            for eps in cfg.epsilons
        ]
    found.append(Measure("autoattack", f"AutoAttack {cfg.autoattack_eps:g}", ROBUSTNESS, True))
    found += [
        Measure(
            entry.label,
            SHORT_METRIC_TITLES.get(entry.label, metric_title(entry.label)),
            INTERPRETABILITY,
            explanation_quality.get_metric(entry.spec.name).higher_is_better,
            2,
            entry.spec.name,
        )
        for entry in cfg.metrics
    ]
    share = f"{cfg.removal_fraction:.0%}"
    found += [
        Measure("removal_gap", f"removal gap {share}", INTERPRETABILITY, True),
        Measure("road_gap", f"ROAD gap {share}", INTERPRETABILITY, True),
        Measure("roar", f"ROAR acc. {share}", INTERPRETABILITY, False),
        Measure("alignment", "alignment", INTERPRETABILITY, True, 2),
    ]
    return tuple(found)


def cost_measure() -> Measure:
    return Measure("cost", "cost per epoch (x standard)", COST, False)


Key = tuple[str, int]  # (label, seed)


def specs(
    cfg: SynthesisConfig, factor: float = 1.0, seeds: tuple[int, ...] | None = None
) -> dict[Key, train.TrainSpec]:
    """Every listed method and seed at ``factor`` times the chapter's budget (its own epochs too)."""
    grid = {}
    for seed in seeds or cfg.seeds:
        for entry in cfg.methods:
            spec = common.train_spec(cfg, entry, seed, epochs=cfg.epochs, lr=cfg.lr)
            grid[entry.label, seed] = dataclasses.replace(spec, epochs=spec.epochs * factor)
    return grid


def budget_specs(cfg: SynthesisConfig) -> dict[Key, train.TrainSpec]:
    return specs(cfg, cfg.budget_factor, cfg.budget_seeds or cfg.seeds)


def plan(cfg: SynthesisConfig) -> common.Plan:
    grid: dict[Hashable, train.TrainSpec] = {**specs(cfg)}
    grid.update({(label, seed, "budget"): spec for (label, seed), spec in budget_specs(cfg).items()})
    retrains = len(grid) + len(cfg.seeds)
    return common.Plan(
        grid,
        (*(e.spec for e in cfg.attacks), benchmark_measures.autoattack_spec(cfg)),
        (*(e.label for e in cfg.metrics), "removal_gap", "road", "roar", "alignment"),
        (
            f"{retrains} ROAR retrainings ({cfg.roar_epochs:g} epochs each, cached), one per model "
            f"and a random control per seed",
        ),
    )


def per_image(
    cfg: SynthesisConfig,
    trained: dict[Key, torch.nn.Module],
    records: pd.DataFrame,
    groups: tuple[str, ...] = tuple(benchmark_measures.GROUPS),
) -> pd.DataFrame:
    """Every per-image measure of ``groups`` (all by default) of every model. Tidy: method, seed,
    measure, image, score. One cache entry per model and group of measures
    (``benchmark_measures``), so a newly listed method computes only its own rows."""
    keys = records.set_index(["method", "seed"])["cache_key"]
    return pd.concat(
        [
            benchmark_measures.measured(cfg, group, model, keys[label, seed], seed, label)
            for (label, seed), model in trained.items()
            for group in groups
        ],
        ignore_index=True,
    )


def roar_random(cfg: SynthesisConfig, seeds: tuple[int, ...]) -> pd.DataFrame:
    """ROAR of the random control per seed (the floor a map must beat). Tidy as ``per_image``."""
    return pd.concat(
        [benchmark_measures.measured(cfg, "roar", None, roar.RANDOM, seed, "random ranking") for seed in seeds],
        ignore_index=True,
    )


def cost(cfg: SynthesisConfig) -> pd.DataFrame:
    """Seconds per training batch of every method, timed on this machine in ``cost_repeats``
    repeats interleaved across methods (``cost_batches`` batches each, a fresh network of the
    first seed; a method's ``prepare``, e.g. loading its teacher, is not timed). Not cached: a
    timing belongs to the run that shows it. Tidy: method, repeat, seconds_per_batch."""
    split = data.load(cfg.dataset, "train").subset(cfg.cost_batches * cfg.batch_size, cfg.seeds[0])
    grid = specs(cfg, seeds=(cfg.seeds[0],))
    rows = []
    for repeat in range(cfg.cost_repeats):
        for (label, seed), spec in grid.items():
            one_pass = dataclasses.replace(spec, epochs=1.0)
            torch.manual_seed(seed)
            model = train.build_model(one_pass)
            history = train.fit(model, split, one_pass, desc=f"timing {label} (repeat {repeat + 1})")
            rows.append(
                {
                    "method": label,
                    "repeat": repeat,
                    "seconds_per_batch": float(history["seconds"].sum()) / cfg.cost_batches,
                }
            )
    return pd.DataFrame(rows)


def cost_ratios(timings: pd.DataFrame, standard: str) -> pd.DataFrame:
    """Each method's seconds per batch over standard training's in the same repeat. Tidy: method,
    repeat, ratio."""
    per_repeat = timings.pivot(index="repeat", columns="method", values="seconds_per_batch")
    ratios = per_repeat.div(per_repeat[standard], axis=0)
    return ratios.stack().rename("ratio").reset_index()


def median_ratio(ratios: pd.DataFrame) -> pd.Series:
    return ratios.groupby("method")["ratio"].agg(lambda r: statistics.median(r.tolist()))


def saliency_maps(
    cfg: SynthesisConfig, trained: dict[Key, torch.nn.Module]
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Images, labels and every listed model's attribution (first seed) on the same test images."""
    models = {label: trained[label, cfg.seeds[0]] for label in cfg.labels()}
    options = benchmark_measures.explainer_options(cfg)
    return common.maps(models, cfg.dataset, cfg.saliency_images, cfg.explainer, options)
