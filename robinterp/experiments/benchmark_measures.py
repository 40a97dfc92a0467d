"""The synthesis chapter's measures of one model, per test image, each group one cache entry.

Kept apart from the chapter's module on purpose: an entry is keyed by this module's code, the
model's own cache key and the config fields its group reads (``GROUPS``), so editing the
chapter's config, tables or prose recomputes no measurement, and listing one more method
computes only that method's rows. The functions read the fields named in ``GROUPS`` from the
chapter's config (``robinterp.experiments.synthesis.SynthesisConfig``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import torch

from robinterp import cache, device, explain, explanation_quality, metrics, models, roar, robustness
from robinterp.attacks import AttackSpec
from robinterp.experiments import common

CHAPTER = "synthesis"


def robust_name(attack: str, eps: float) -> str:
    """The measure name of an attack at a radius, e.g. ``pgd@0.1``."""
    return f"{attack}@{eps:g}"


def autoattack_spec(cfg: Any) -> AttackSpec:
    return AttackSpec.of("autoattack", parts=cfg.autoattack_parts)


def explainer_options(cfg: Any) -> dict[str, Any]:
    """Integrated Gradients' steps from the config; the other explainers take none."""
    return {"n_steps": cfg.ig_steps} if cfg.explainer == "integrated_gradients" else {}


def _rows(measure: str, values: torch.Tensor) -> pd.DataFrame:
    return pd.DataFrame({"measure": measure, "image": range(len(values)), "score": values.tolist()})


def _percent(mask: torch.Tensor) -> torch.Tensor:
    return 100 * mask.float()


def robustness_rows(cfg: Any, model: torch.nn.Module | None, seed: int, label: str, model_key: str) -> pd.DataFrame:
    """Clean and robust correctness per image (0 or 100) under every attack and radius, and AutoAttack."""
    split = common.eval_subset(cfg.dataset, cfg.eval_size, "attacks")
    attacked = robustness.robust_table(
        model,
        split.images,
        split.labels,
        common.evaluation_attacks(cfg),
        cfg.epsilons,
        seed=seed,
        early_stop=cfg.attack_early_stop,
        desc=f"attacks on {label} seed {seed}",
    )
    attacked = attacked.assign(measure=[robust_name(a, e) for a, e in zip(attacked.attack, attacked.eps)])
    tables = [
        _rows("clean", _percent(models.predict(model, split.images) == split.labels)),
        attacked.rename(columns={"correct": "score"})[["measure", "image", "score"]],
    ]
    few = common.eval_subset(cfg.dataset, cfg.autoattack_size, "autoattack")
    correct = robustness.correct_under_attack(
        model,
        few.images,
        few.labels,
        autoattack_spec(cfg),
        (cfg.autoattack_eps,),
        seed=seed,
        early_stop=cfg.attack_early_stop,
    )
    tables.append(_rows("autoattack", _percent(correct[cfg.autoattack_eps])))
    return pd.concat(tables, ignore_index=True)


def quality_rows(cfg: Any, model: torch.nn.Module | None, seed: int, label: str, model_key: str) -> pd.DataFrame:
    """The seven Quantus metrics per image (robinterp's batched implementation, tested equal to Quantus)."""
    split = common.eval_subset(cfg.dataset, cfg.quantus_size, "explanation_quality")
    scores = explanation_quality.scores(
        model,
        split.images,
        split.labels,
        tuple(explanation_quality.METRICS),
        explainer=cfg.explainer,
        explainer_options=explainer_options(cfg),
        samples=cfg.quantus_samples,
        noise=cfg.quantus_noise,
        seed=seed,
    )
    return scores.rename(columns={"metric": "measure"})


def faithfulness_rows(cfg: Any, model: torch.nn.Module | None, seed: int, label: str, model_key: str) -> pd.DataFrame:
    """Per image: the removal gap (right after removing a random ``removal_fraction`` minus after
    removing the top one by |attribution|, noise-filled, no retraining) and the ROAD gap (right
    after imputing the least relevant fraction minus the most relevant one); points."""
    split = common.eval_subset(cfg.dataset, cfg.faithfulness_size, "removal")
    attribution = explain.explain(model, split.images, split.labels, cfg.explainer, **explainer_options(cfg))
    fraction = (cfg.removal_fraction,)
    by_saliency = metrics.correct_after_removal(model, split.images, split.labels, attribution, fraction, seed=seed)[0]
    by_chance = metrics.correct_after_removal(
        model, split.images, split.labels, attribution, fraction, random_ranking=True, seed=seed
    )[0]
    road = {
        order: metrics.road(
            model,
            split.images,
            split.labels,
            attribution,
            (100 * cfg.removal_fraction,),
            order=order,
            noise=cfg.road_noise,
            seed=seed,
        )[0]
        for order in metrics.ROAD_ORDERS
    }
    return pd.concat(
        [
            _rows("removal_gap", _percent(by_chance) - _percent(by_saliency)),
            _rows("road_gap", _percent(road["lerf"]) - _percent(road["morf"])),
        ],
        ignore_index=True,
    )


def alignment_rows(cfg: Any, model: torch.nn.Module | None, seed: int, label: str, model_key: str) -> pd.DataFrame:
    """Etmann et al.'s alignment |<x, g>| / ||g|| of the predicted class, per image."""
    split = common.eval_subset(cfg.dataset, cfg.alignment_size, "alignment")
    return _rows("alignment", metrics.alignment(model, split.images))


def roar_rows(cfg: Any, model: torch.nn.Module | None, seed: int, label: str, model_key: str) -> pd.DataFrame:
    """Per test image: right (0 or 100) by a network retrained without the top ``removal_fraction``
    of pixels by the model's saliency (``roar_target``'s class), tested with the same pixels
    removed; ``model`` None is the random control."""
    retrain, train_split = common.roar_retraining(cfg, seed)
    test = common.eval_subset(cfg.dataset, cfg.roar_test_size, "removal")
    fill = roar.channel_mean(train_split)
    ranking = None if model is None else roar.saliency_ranking(model, cfg.roar_target)
    retrained, _ = roar.retrained(
        model_key,
        ranking,
        cfg.removal_fraction,
        retrain,
        train_split,
        lambda: roar.ranked(train_split, ranking, seed, "train"),
        fill,
        name=f"{label} seed {seed}",
    )
    removed = roar.remove(test.images, roar.ranked(test, ranking, seed, "test"), cfg.removal_fraction, fill)
    return _rows("roar", _percent(models.predict(retrained, removed) == test.labels))


Rows = Callable[[Any, "torch.nn.Module | None", int, str, str], pd.DataFrame]
GROUPS: dict[str, tuple[Rows, tuple[str, ...]]] = {
    # group -> (its rows, the config fields they read besides the data set; ``key_settings`` says
    # how a field is keyed where the raw value is not what the rows read)
    "robustness": (
        robustness_rows,
        (
            "eval_size",
            "epsilons",
            "pgd_steps",
            "mifgsm_steps",
            "autoattack_size",
            "autoattack_eps",
            "autoattack_parts",
            "attack_early_stop",
        ),
    ),
    "quality": (quality_rows, ("explainer", "ig_steps", "quantus_size", "quantus_samples", "quantus_noise")),
    "faithfulness": (
        faithfulness_rows,
        ("explainer", "ig_steps", "faithfulness_size", "removal_fraction", "road_noise"),
    ),
    "alignment": (alignment_rows, ("alignment_size",)),
    "roar": (
        roar_rows,
        (
            "removal_fraction",
            "roar_epochs",
            "roar_target",
            "roar_test_size",
            "roar_train_size",
            # the retraining's spec (common.roar_retraining)
            "train_size",
            "lr",
            "batch_size",
            "optimizer",
            "model",
            "width",
            "device",
            "precision",
            "torch_compile",
            "accuracy_size",
        ),
    ),
}


def key_settings(cfg: Any, group: str) -> dict[str, Any]:
    """What a group's cache entry is keyed by besides the model: the data set and the fields the
    group reads (``GROUPS``), as they act: Integrated Gradients' steps only when it is the
    explainer (saliency reads none), the device resolved (``auto`` is the CPU on one machine and
    CUDA on another)."""
    fields = GROUPS[group][1]
    settings: dict[str, Any] = {"dataset": cfg.dataset}
    for field in fields:
        if field == "ig_steps":
            settings["explainer_options"] = explainer_options(cfg)
        elif field == "device":
            settings[field] = device.resolve(cfg.device)
        else:
            settings[field] = getattr(cfg, field)
    return settings


def measured(
    cfg: Any, group: str, model: torch.nn.Module | None, model_key: str, seed: int, label: str
) -> pd.DataFrame:
    """One group of measures of one model (``model`` None with key ``roar.RANDOM``: ROAR's random
    control), from the cache or computed. Tidy: measure, image, score, method, seed."""
    rows = GROUPS[group][0]
    return cache.cached_table(
        {"chapter": CHAPTER, "group": group, "model": model_key, "seed": seed, "settings": key_settings(cfg, group)},
        lambda: rows(cfg, model, seed, label, model_key),
        code=(__name__,),
    ).assign(method=label, seed=seed)
