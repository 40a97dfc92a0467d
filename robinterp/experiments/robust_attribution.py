"""Chapter "Robust attribution alignment" (Zeng et al. 2021, its supplement).

Standard training, defensive distillation, input-gradient regularization, PGD training in L2
and Linf at several radii and step counts, and the attribution-alignment model (a
reconstruction: ``robinterp.methods.attribution_alignment``) are trained alike. Their vanilla
saliency maps (and the alignment model's own map) are judged by ROAR, which retrains a fresh
model on images whose top-ranked pixels were removed (``robinterp.roar``), and by ROAD, which
needs no retraining (``robinterp.metrics.road``); Etmann et al.'s alignment between an image and
its saliency map is set against the training radius.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import pandas as pd
import torch

from robinterp import cache, explain, measures, models, roar, train
from robinterp.attacks import AttackSpec
from robinterp.configs.robust_attribution import (
    RobustAttributionConfig,
    radius_rows,
)
from robinterp.experiments import common
from robinterp.measures import _rankings, measure
from robinterp.measures.alignment import AlignmentSettings
from robinterp.measures.attack import AttackSettings
from robinterp.measures.road import RoadSettings
from robinterp.measures.roar import RoarSettings
from robinterp.methods import attribution_alignment

CHAPTER = "robust_attribution"


def radius_mapping(linf_reference: float, pixels: int) -> pd.DataFrame:
    """The supplement's radii carried to another data set, as the chapter's table shows them
    (``robinterp.configs.robust_attribution.radius_rows``): norm, paper_eps, eps."""
    return pd.DataFrame(radius_rows(linf_reference, pixels))


Key = tuple[str, int]  # (label, seed)


def specs(cfg: RobustAttributionConfig) -> dict[Key, train.TrainSpec]:
    """Every model: the methods at every seed, the grid at ``grid_seeds``."""
    grid = common.method_grid(cfg)
    for seed in cfg.grid_seeds:
        for entry in cfg.grid:
            grid[entry.label, seed] = common.train_spec(cfg, entry, seed, epochs=cfg.epochs, lr=cfg.lr)
    return grid


def evaluation_attacks(cfg: RobustAttributionConfig) -> tuple[tuple[AttackSpec, str, float], ...]:
    """(attack, norm, eps) of the robust accuracy beside the alignment."""
    pgd = AttackSpec.of("pgd", steps=cfg.pgd_steps)
    return ((pgd, "l2", cfg.robust_l2_eps), (pgd, "linf", cfg.robust_linf_eps))


def plan(cfg: RobustAttributionConfig) -> common.Plan:
    retrains = (len(specs(cfg)) + len(cfg.map_models()) * len(cfg.seeds) + len(cfg.seeds)) * len(cfg.roar_fractions)
    leaks = 1 + 2 * len(cfg.methods) + len(cfg.map_models())
    return common.Plan(
        specs(cfg),
        tuple(dict.fromkeys(a for a, _, _ in evaluation_attacks(cfg))),
        ("roar", "road", "alignment"),
        (
            f"{retrains} ROAR retrainings and {leaks} of the leak test, {cfg.roar_epochs:g} epochs each on "
            f"{common.roar_train_size(cfg) or 'all the'} training images (cached models; a grid model "
            "equal to a listed one shares its retrainings)",
        ),
    )


def train_all(cfg: RobustAttributionConfig) -> tuple[common.TrainedModels, pd.DataFrame]:
    """Every model (from the cache where it was trained before) and its record; a grid entry
    with a listed method's spec is the same model."""
    trained, records = common.train_grid(specs(cfg))
    grid_labels = {e.label for e in cfg.grid}
    return trained, records.assign(group=["grid" if m in grid_labels else "methods" for m in records.method])


def own_map_layer(cfg: RobustAttributionConfig, label: str) -> str | None:
    """The layer an attribution-alignment model's own map explains (None for any other model):
    that map is ranked beside the model's vanilla saliency."""
    entry = next((e for e in cfg.methods if e.label == label), None)
    return entry.values["layer"] if entry is not None and entry.method == "attribution_alignment" else None


def rankings(cfg: RobustAttributionConfig, model: torch.nn.Module, label: str) -> list[roar.Ranking]:
    """How a model's pixels are ranked: its vanilla saliency of ``roar_target``'s class, and for
    an attribution-alignment model also its own map."""
    return _rankings.rankings(model, "saliency", (), cfg.roar_target, own_map_layer(cfg, label))


def roar_settings(cfg: RobustAttributionConfig, seed: int, label: str | None) -> RoarSettings:
    """ROAR of one model (``label`` None: the random control) of one seed."""
    retrain, _ = common.roar_retraining(cfg, seed)
    layer = None if label is None else own_map_layer(cfg, label)
    return RoarSettings(retrain, cfg.roar_fractions, cfg.roar_test_size, cfg.roar_target, layer)


def roar_table(cfg: RobustAttributionConfig, trained: common.TrainedModels, records: pd.DataFrame) -> pd.DataFrame:
    """Per image: is it classified right by the model retrained without the top ``fraction`` of
    pixels by each source model's ranking (and by a random one)? Tidy: ranking, fraction, image,
    correct (0 or 100), the retraining's minutes, source, seed; each model's rows cached on their
    own (``robinterp.measures.roar``)."""
    tables = []
    for seed in cfg.seeds:
        control = measure(roar_settings(cfg, seed, None), None, model_key=roar.RANDOM, seed=seed, name=f"seed {seed}")
        tables.append(control.assign(source="random", seed=seed))
        for (label, model_seed), model in trained.items():
            if model_seed == seed:
                rows = measure(
                    roar_settings(cfg, seed, label),
                    model,
                    model_key=trained.cache_keys[label, seed],
                    seed=seed,
                    name=f"{label} seed {seed}",
                )
                tables.append(rows.assign(source=label, seed=seed))
    return pd.concat(tables, ignore_index=True)


def leak_table(cfg: RobustAttributionConfig, trained: common.TrainedModels, records: pd.DataFrame) -> pd.DataFrame:
    """Per test image: is it classified right by a fresh model trained on nothing but the masks of
    where ``leak_fraction`` of the pixels were removed, by each listed model's map (first seed;
    saliency of the predicted and of the true class) and by the random control? Far above
    chance, the removal's shape gives the label away, and ROAR then measures that, not the map.
    Tidy: map, target, image, correct (0 or 100); cached by what it reads."""
    seed = cfg.seeds[0]
    retrain, train_split = common.roar_retraining(cfg, seed)
    sources = {label: trained.cache_keys[label, seed] for label in cfg.labels()}

    def compute() -> pd.DataFrame:
        test = common.eval_subset(cfg.dataset, cfg.roar_test_size, "removal")
        fill = roar.channel_mean(train_split)
        jobs: list[tuple[str, str, roar.Ranking | None]] = [(roar.RANDOM, roar.RANDOM, None)]
        for label in cfg.labels():
            model = trained[label, seed]
            jobs += [(sources[label], label, roar.saliency_ranking(model, target)) for target in ("predicted", "true")]
            jobs += [(sources[label], label, r) for r in rankings(cfg, model, label)[1:]]
        tables = []
        for source, label, ranking in jobs:
            test_order = roar.ranked(test, ranking, seed, "test")
            # the training images are ranked only when the retraining is not cached
            model_, _ = roar.retrained(
                source,
                ranking,
                cfg.leak_fraction,
                retrain,
                train_split,
                lambda r=ranking: roar.ranked(train_split, r, seed, "train"),
                fill,
                content="mask",
                name=f"{label} seed {seed}",
            )
            masks = roar.removal_mask(test.images, test_order, cfg.leak_fraction)
            correct = models.predict(model_, masks) == test.labels
            name = label if ranking is None or ranking.name == "saliency" else f"{label} (own map)"
            tables.append(
                pd.DataFrame({"image": range(len(test)), "correct": (100 * correct.int()).tolist()}).assign(
                    map=name, target=ranking.target if ranking else "none"
                )
            )
        return pd.concat(tables, ignore_index=True)

    key = {
        "chapter": CHAPTER,
        "table": "leak",
        "sources": sources,
        "own_maps": {label: own_map_layer(cfg, label) for label in cfg.labels()},
        "retrain": dataclasses.asdict(retrain),
        "test_size": cfg.roar_test_size,
        "leak_fraction": cfg.leak_fraction,
    }
    return cache.cached_table(key, compute, code=(__name__,))


def road_table(cfg: RobustAttributionConfig, trained: common.TrainedModels) -> pd.DataFrame:
    """Per image: is it still classified right by the same model after the top (MoRF) or bottom
    (LeRF) ``fraction`` of pixels by each ranking are imputed (ROAD, no retraining)? Tidy:
    ranking, order, fraction, image, correct (0 or 100), seconds, source, seed; each model's rows
    cached on their own (``robinterp.measures.road``)."""
    tables = []
    for (label, seed), model in trained.items():
        settings = RoadSettings(
            cfg.dataset,
            cfg.road_size,
            cfg.roar_fractions,
            cfg.road_noise,
            target=cfg.roar_target,
            own_map_layer=own_map_layer(cfg, label),
        )
        rows = measure(
            settings, model, model_key=trained.cache_keys[label, seed], seed=seed, name=f"{label} seed {seed}"
        )
        tables.append(rows.assign(source=label, seed=seed))
    return pd.concat(tables, ignore_index=True)


ALIGNMENT_MEASURES = ("alignment (predicted class)", "alignment (true class)", "cosine (true class)")


def alignment_table(cfg: RobustAttributionConfig, trained: common.TrainedModels) -> pd.DataFrame:
    """Per image and model: Etmann et al.'s alignment |<x, g>| / ||g|| with g the input gradient of
    the predicted class's logit (their paper) and of the true class's (their code), and the cosine
    of the latter. Tidy: measure, image, score, method, seed; each model's rows cached on their own."""
    settings = AlignmentSettings(cfg.dataset, cfg.alignment_size, ALIGNMENT_MEASURES)
    rows = measures.over_models(settings, trained, trained.cache_keys)
    return rows.rename(columns={"variant": "measure"})


def robustness(cfg: RobustAttributionConfig, trained: common.TrainedModels) -> pd.DataFrame:
    """PGD accuracy of every model in L2 and Linf at the chapter's radii (from per-image rows
    cached per model)."""
    per_image = pd.concat(
        [
            measures.over_models(
                AttackSettings(
                    cfg.dataset,
                    cfg.alignment_size,
                    attack,
                    (eps,),
                    norm=norm,
                    early_stop=cfg.attack_early_stop,
                    purpose="alignment",
                ),
                trained,
                trained.cache_keys,
            ).assign(attack=attack.name)
            for attack, norm, eps in evaluation_attacks(cfg)
        ],
        ignore_index=True,
    )
    return common.robust_curves(per_image)


def map_cost(cfg: RobustAttributionConfig, trained: dict[Key, torch.nn.Module]) -> pd.DataFrame:
    """Seconds per image of each alignment model's own map and of its teacher's vanilla saliency
    on ``alignment_size`` test images, timed in ``cost_repeats`` interleaved repeats on this
    machine (not cached: a timing belongs to the run that shows it). Tidy: model, map, repeat,
    seconds_per_image."""
    split = common.eval_subset(cfg.dataset, cfg.alignment_size, "alignment")
    rows = []
    for entry in (e for e in cfg.methods if e.method == "attribution_alignment"):
        own, teacher = trained[entry.label, cfg.seeds[0]], trained[cfg.teacher_label(entry), cfg.seeds[0]]
        layer = entry.values["layer"]
        # both on the whole subset at once, so that neither gains from batching
        contenders = {
            "own map (alignment model)": functools.partial(
                attribution_alignment.explanation, own, split.images, layer=layer
            ),
            "vanilla saliency (its PGD-L2 teacher)": functools.partial(
                explain.explain, teacher, split.images, split.labels, "saliency", batch_size=len(split)
            ),
        }
        for fn in contenders.values():  # warm-up: first calls pay for allocation
            fn()
        for repeat in range(cfg.cost_repeats):
            for name, fn in contenders.items():
                start = time.perf_counter()
                fn()
                rows.append(
                    {
                        "model": entry.label,
                        "map": name,
                        "repeat": repeat,
                        "seconds_per_image": (time.perf_counter() - start) / len(split),
                    }
                )
    return pd.DataFrame(rows)


def saliency_maps(
    cfg: RobustAttributionConfig,
    trained: dict[Key, torch.nn.Module],
    labels: list[str],
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Images, labels and each model's vanilla saliency of ``roar_target``'s class (first seed) on
    the same test images, and each alignment model's own map beside it."""
    split = common.eval_subset(cfg.dataset, cfg.saliency_images, "maps")
    maps: dict[str, torch.Tensor] = {}
    for label in labels:
        model = trained[label, cfg.seeds[0]]
        for ranking in rankings(cfg, model, label):
            name = label if ranking.name == "saliency" else f"{label} (own map)"
            maps[name] = ranking.attribute(split.images, split.labels)
    return split.images, split.labels, maps


def evaluation_cost(roar_results: pd.DataFrame, road_results: pd.DataFrame) -> pd.DataFrame:
    """What ROAR and ROAD each cost per source model and ranking, in minutes (this run's timings;
    a cached retraining counts the minutes it took when it was trained)."""
    roar_cost = roar_results.groupby(["source", "seed", "ranking", "fraction"])[
        ["retrain_minutes", "rank_seconds"]
    ].first()
    roar_cost = roar_cost.groupby(["source", "seed", "ranking"]).agg(
        retrain=("retrain_minutes", "sum"), rank=("rank_seconds", "first")
    )
    roar_minutes = (roar_cost["retrain"] + roar_cost["rank"] / 60).rename("ROAR (min)")
    road_minutes = (road_results.groupby(["source", "seed", "ranking"])["seconds"].first() / 60).rename("ROAD (min)")
    return pd.concat([roar_minutes, road_minutes], axis=1).reset_index()
