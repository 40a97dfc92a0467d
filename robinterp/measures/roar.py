"""ROAR (Hooker et al. 2019): per test image, right (0 or 100) by a fresh network retrained
without the top fraction of pixels by the model's ranking, tested with the same pixels removed
(``robinterp.roar``); a model of None with the key ``robinterp.roar.RANDOM`` is the random
ranking's control."""

from __future__ import annotations

import dataclasses
import functools
import time

import pandas as pd
from torch import nn

from robinterp import data, models, roar, train
from robinterp.measures import Measure, _rankings, images, register


@dataclasses.dataclass(frozen=True)
class RoarSettings:
    """The retraining, the fractions, the test images and the rankings."""

    retrain: train.TrainSpec
    """Each retraining (standard training of a fresh network; its data set, training images (the
    first ``train_size`` of its seed's permutation) and seed key it too)."""
    fractions: tuple[float, ...]
    """Fractions of pixels removed."""
    size: int | None
    """Test images, with the same pixels removed (a seeded subset; None for all)."""
    target: str = "predicted"
    """The class whose vanilla saliency ranks the pixels: predicted or true."""
    own_map_layer: str | None = None
    """For an attribution-alignment model, the layer of its own map, ranked too (None: none)."""
    purpose: str = "removal"
    """Which seeded subset of the test set (``robinterp.measures.images.SUBSET_SEEDS``)."""


def rows(model: nn.Module | None, settings: RoarSettings, *, seed: int, model_key: str, name: str) -> pd.DataFrame:
    """Tidy: ranking, fraction, image, correct (0 or 100), retrain_minutes (when the retraining
    was computed), rank_seconds (ranking the test images)."""
    spec = settings.retrain
    train_split = data.load(spec.dataset, "train").subset(spec.train_size, spec.seed)
    test = images.eval_subset(spec.dataset, settings.size, settings.purpose)
    fill = roar.channel_mean(train_split)
    found: list[roar.Ranking | None] = (
        [None] if model is None else _rankings.rankings(model, "saliency", (), settings.target, settings.own_map_layer)
    )
    tables = []
    for ranking in found:
        # the training images are ranked once, and only when a retraining is not cached
        order_train = functools.cache(functools.partial(roar.ranked, train_split, ranking, seed, "train"))
        start = time.perf_counter()
        test_order = roar.ranked(test, ranking, seed, "test")
        rank_seconds = time.perf_counter() - start
        for fraction in settings.fractions:
            retrained, meta = roar.retrained(
                model_key, ranking, fraction, spec, train_split, order_train, fill, name=name
            )
            correct = models.predict(retrained, roar.remove(test.images, test_order, fraction, fill)) == test.labels
            tables.append(
                pd.DataFrame(
                    {
                        "ranking": ranking.name if ranking else roar.RANDOM,
                        "fraction": fraction,
                        "image": range(len(test)),
                        "correct": (100 * correct.int()).tolist(),
                        "retrain_minutes": meta["wall_seconds"] / 60,
                        "rank_seconds": rank_seconds,
                    }
                )
            )
    return pd.concat(tables, ignore_index=True)


def code(settings: RoarSettings) -> tuple[str, ...]:
    """The retraining's method (standard training) keys the retrained models, so the rows too."""
    return train.model_code(settings.retrain)


MEASURE = register(Measure("roar", "ROAR", RoarSettings, rows, __name__, code=code))
