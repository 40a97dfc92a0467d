"""Measures: what the book computes about one trained model, one unit each, and their registry.

**Adding a measure** is adding a module to this folder that defines:

- a frozen settings dataclass whose fields are exactly what the measure reads (the data set,
  which test images, its options), each with a docstring; a field that only cuts work into
  pieces and never changes a number is declared with ``unkeyed(...)``;
- ``rows(model, settings, *, seed, model_key, name) -> DataFrame``: the measure of one model,
  a tidy table with one row per test image (column ``image``) and its value in ``correct``
  (0 or 100: a mean is an accuracy in %) or ``score`` (the measure's own unit); ``seed`` is the
  model's (attacks' random starts, noise), ``model_key`` its cache key, ``name`` its label for
  progress lines;
- ``MEASURE = register(Measure("name", "Title", Settings, rows, __name__, value=..., better=...))``.

``measure(settings, model, model_key=..., seed=...)`` computes it for one model, or reads it
from the cache, under exactly the model's cache key, the seed, the keyed settings and the code
of the measure's module (with what it imports): a chapter's verdict threshold or figure size
cannot key it, and a newly listed model computes only its own rows. ``over_models`` does so
for every model of a chapter and labels the rows. The registry imports every module here;
this file holds no computation and keys nothing (``robinterp.codehash.NEUTRAL_MODULES``).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import pandas as pd
from torch import nn

from robinterp import RobinterpError, cache

VALUES = ("correct", "score")
DIRECTIONS = ("higher", "lower", "per metric")


@dataclasses.dataclass(frozen=True)
class Measure:
    """A measure of one model: its name, title, settings dataclass, per-model rows and module."""

    name: str
    title: str
    settings: type
    rows: Callable[..., pd.DataFrame]
    module: str
    value: str = "correct"
    """The value column: ``correct`` (0 or 100 per image) or ``score``."""
    better: str = "higher"
    """Which way is better: higher, lower, or per metric (the metric says)."""
    code: Callable[[Any], tuple[str, ...]] | None = None
    """Further modules that key the rows for given settings (those of the attack it runs, of the
    retraining's method), when the measure's module reaches them only through a registry."""

    def __post_init__(self) -> None:
        if self.value not in VALUES or self.better not in DIRECTIONS:
            raise RobinterpError(f"measure {self.name!r}: value in {VALUES}, better in {DIRECTIONS}")


MEASURES: dict[str, Measure] = {}


def register(measure: Measure) -> Measure:
    """Add ``measure`` to the registry (one per name and one per settings class)."""
    if measure.name in MEASURES or any(m.settings is measure.settings for m in MEASURES.values()):
        raise RobinterpError(f"measure {measure.name!r} or its settings class is registered twice")
    MEASURES[measure.name] = measure
    return measure


def unkeyed(default: Any) -> Any:
    """A settings field that never changes a number (how many images go through at once)."""
    return dataclasses.field(default=default, metadata={"keyed": False})


def keyed(settings: Any) -> dict[str, Any]:
    """The settings' fields that key the measure's cache entries, as plain values."""
    return {
        field.name: _plain(getattr(settings, field.name))
        for field in dataclasses.fields(settings)
        if field.metadata.get("keyed", True)
    }


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, **dataclasses.asdict(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def measure_of(settings: Any) -> Measure:
    """The registered measure whose settings class ``settings`` is."""
    found = next((m for m in MEASURES.values() if type(settings) is m.settings), None)
    if found is None:
        raise RobinterpError(f"{type(settings).__name__} is not the settings of a registered measure")
    return found


def cache_key(settings: Any, model_key: str, seed: int) -> dict[str, Any]:
    """What one model's entry of a measure is keyed by (with the measure's code)."""
    return {"measure": measure_of(settings).name, "model": model_key, "seed": seed, "settings": keyed(settings)}


def measure(settings: Any, model: nn.Module | None, *, model_key: str, seed: int, name: str = "") -> pd.DataFrame:
    """The measure of ``settings`` on one model, from the cache or computed (``model`` None with a
    control's key, e.g. ROAR's random ranking)."""
    unit = measure_of(settings)
    return cache.cached_table(
        cache_key(settings, model_key, seed),
        lambda: unit.rows(model, settings, seed=seed, model_key=model_key, name=name or model_key[:8]),
        code=(unit.module, *(unit.code(settings) if unit.code else ())),
    )


def over_models(
    settings: Any,
    trained: Mapping[Hashable, nn.Module],
    keys: Mapping[Hashable, str],
    columns: Sequence[str] = ("method", "seed"),
) -> pd.DataFrame:
    """The measure of every model of ``trained`` (keyed like ``keys``: ``columns``, the last one
    the seed), each from its own cache entry, the rows labelled by ``columns``."""
    tables = []
    for index, model in trained.items():
        parts = index if isinstance(index, tuple) else (index,)
        label = " ".join(str(p) for p in parts[:-1])
        rows = measure(settings, model, model_key=keys[index], seed=parts[-1], name=f"{label} seed {parts[-1]}")
        tables.append(rows.assign(**dict(zip(columns, parts))))
    return pd.concat(tables, ignore_index=True)


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_discover()
