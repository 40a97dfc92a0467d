"""The synthesis chapter's measures of one model, per test image, by group.

Each group lists the measures (``robinterp.measures``) it takes from the chapter's config
(``robinterp.experiments.synthesis.SynthesisConfig``); each measure of each model is its own
cache entry, keyed by the model's key, its settings and its code, so editing the chapter's
config, tables or prose recomputes no measurement, and listing one more method computes only
that method's rows. Here the measures' rows become the benchmark's columns (measure, image,
score).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import torch

from robinterp.attacks import AttackSpec
from robinterp.experiments import common
from robinterp.measures import measure
from robinterp.measures.alignment import AlignmentSettings
from robinterp.measures.attack import AttackSettings
from robinterp.measures.clean import CleanSettings
from robinterp.measures.quality import QualitySettings
from robinterp.measures.removal import RemovalSettings
from robinterp.measures.road import RoadSettings
from robinterp.measures.roar import RoarSettings

CHAPTER = "synthesis"


def robust_name(attack: str, eps: float) -> str:
    """The measure name of an attack at a radius, e.g. ``pgd@0.1``."""
    return f"{attack}@{eps:g}"


def autoattack_spec(cfg: Any) -> AttackSpec:
    return AttackSpec.of("autoattack", parts=cfg.autoattack_parts)


def explainer_options(cfg: Any) -> dict[str, Any]:
    """Integrated Gradients' steps from the config; the other explainers take none."""
    return {"n_steps": cfg.ig_steps} if cfg.explainer == "integrated_gradients" else {}


Named = tuple[tuple[Any, str], ...]  # (a measure's settings, the name its columns take)


def robustness(cfg: Any, seed: int) -> Named:
    """Clean and robust correctness under every listed attack and radius, and AutoAttack."""
    return (
        (CleanSettings(cfg.dataset, cfg.eval_size), "clean"),
        *((common.attack_settings(cfg, entry), entry.label) for entry in cfg.attacks),
        (
            AttackSettings(
                cfg.dataset,
                cfg.autoattack_size,
                autoattack_spec(cfg),
                (cfg.autoattack_eps,),
                early_stop=cfg.attack_early_stop,
                purpose="autoattack",
            ),
            "autoattack",
        ),
    )


def quality(cfg: Any, seed: int) -> Named:
    """The listed Quantus metrics (robinterp's batched implementation, tested equal to Quantus)."""
    options = tuple(explainer_options(cfg).items())
    settings = QualitySettings(
        cfg.dataset, cfg.quantus_size, cfg.metrics, cfg.explainer, options, cfg.quantus_samples, cfg.quantus_noise
    )
    return ((settings, "quality"),)


def faithfulness(cfg: Any, seed: int) -> Named:
    """The removal gap (right after removing a random ``removal_fraction`` minus after removing
    the top one by |attribution|, noise-filled, no retraining) and the ROAD gap (right after
    imputing the least relevant fraction minus the most relevant one); points."""
    options = tuple(explainer_options(cfg).items())
    fraction = (cfg.removal_fraction,)
    return (
        (RemovalSettings(cfg.dataset, cfg.faithfulness_size, fraction, cfg.explainer, options), "removal_gap"),
        (
            RoadSettings(cfg.dataset, cfg.faithfulness_size, fraction, cfg.road_noise, cfg.explainer, options),
            "road_gap",
        ),
    )


def alignment(cfg: Any, seed: int) -> Named:
    """Etmann et al.'s alignment |<x, g>| / ||g|| of the predicted class."""
    return ((AlignmentSettings(cfg.dataset, cfg.alignment_size), "alignment"),)


def roar_settings(cfg: Any, seed: int) -> Named:
    """Right by a network retrained without the top ``removal_fraction`` of pixels by the model's
    saliency (``roar_target``'s class), tested with the same pixels removed."""
    retrain, _ = common.roar_retraining(cfg, seed)
    return ((RoarSettings(retrain, (cfg.removal_fraction,), cfg.roar_test_size, cfg.roar_target), "roar"),)


GROUPS: dict[str, Callable[[Any, int], Named]] = {
    "robustness": robustness,
    "quality": quality,
    "faithfulness": faithfulness,
    "alignment": alignment,
    "roar": roar_settings,
}


def _gap(rows: pd.DataFrame, column: str, minuend: str, subtrahend: str, name: str) -> pd.DataFrame:
    wide = rows.pivot(index="image", columns=column, values="correct")
    return pd.DataFrame({"measure": name, "image": wide.index, "score": (wide[minuend] - wide[subtrahend]).values})


def benchmark_rows(settings: Any, name: str, rows: pd.DataFrame) -> pd.DataFrame:
    """A measure's rows as the benchmark's columns (measure, image, score); ``name`` is the
    column's, or a listed attack's label (one column per radius)."""
    if isinstance(settings, CleanSettings):
        return pd.DataFrame({"measure": name, "image": rows["image"], "score": rows["correct"]})
    if isinstance(settings, AttackSettings):
        names = [name] * len(rows) if settings.purpose == "autoattack" else [robust_name(name, e) for e in rows["eps"]]
        return pd.DataFrame({"measure": names, "image": rows["image"], "score": rows["correct"]})
    if isinstance(settings, QualitySettings):
        return rows.rename(columns={"metric": "measure"})[["measure", "image", "score"]]
    if isinstance(settings, RemovalSettings):
        return _gap(rows, "ranking", "random", "saliency", "removal_gap")
    if isinstance(settings, RoadSettings):
        return _gap(rows, "order", "lerf", "morf", "road_gap")
    if isinstance(settings, AlignmentSettings):
        return pd.DataFrame({"measure": "alignment", "image": rows["image"], "score": rows["score"]})
    if isinstance(settings, RoarSettings):
        return pd.DataFrame({"measure": "roar", "image": rows["image"], "score": rows["correct"]})
    raise TypeError(f"the benchmark has no column for {type(settings).__name__}")


def measured(
    cfg: Any, group: str, model: torch.nn.Module | None, model_key: str, seed: int, label: str
) -> pd.DataFrame:
    """One group of measures of one model (``model`` None with key ``roar.RANDOM``: ROAR's random
    control), each measure from its cache entry or computed. Tidy: measure, image, score, method,
    seed."""
    tables = [
        benchmark_rows(
            settings, name, measure(settings, model, model_key=model_key, seed=seed, name=f"{label} seed {seed}")
        )
        for settings, name in GROUPS[group](cfg, seed)
    ]
    return pd.concat(tables, ignore_index=True).assign(method=label, seed=seed)
