"""The explanation metrics a chapter may list, and the settings an entry may change, declared
without torch: ``OPTIONS`` (each metric's keyword arguments and their defaults, the Quantus
constructor's), the bound ``MetricSpec`` and the chapter's ``MetricEntry``.

``robinterp.explanation_quality`` computes them; a test checks that ``OPTIONS`` lists each
metric's score function's keyword arguments with their defaults. A metric of a module outside the
package (``ROBINTERP_METRIC_MODULES``) is looked up in that registry instead, which imports it.

Keys nothing (``robinterp.codehash``): a metric's rows are keyed by its own module and the
settings an entry changes.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from robinterp import RobinterpError, units
from robinterp.config import entry_table, shown

ENVIRONMENT = "ROBINTERP_METRIC_MODULES"
"""Comma-separated dotted names of modules outside the package that define metrics the same way."""

SEVEN = (
    "max_sensitivity",
    "avg_sensitivity",
    "local_lipschitz",
    "faithfulness_correlation",
    "faithfulness_estimate",
    "complexity",
    "sparseness",
)
"""The seven metrics Moshe et al. report, in their Table 3's order (``paper_numbers.MOSHE_TABLE3``'s
first seven columns): what a chapter lists unless its config says otherwise."""

SETTING_TYPES = (bool, int, float, str, type(None))
"""What a listed setting may be: one YAML scalar."""

_SENSITIVITY = {
    "nr_samples": 200,
    "lower_bound": 0.2,
    "upper_bound": None,
    "abs": False,
    "normalise": False,
    "normalise_func_kwargs": None,
    "return_nan_when_prediction_changes": False,
}
_MAP = {"abs": True, "normalise": True, "normalise_func_kwargs": None}

OPTIONS: dict[str, dict[str, Any]] = {
    "max_sensitivity": _SENSITIVITY,
    "avg_sensitivity": _SENSITIVITY,
    "local_lipschitz": {
        "nr_samples": 200,
        "perturb_mean": 0.0,
        "perturb_std": 0.1,
        "abs": False,
        "normalise": True,
        "normalise_func_kwargs": None,
        "return_nan_when_prediction_changes": False,
    },
    "faithfulness_correlation": {
        "nr_runs": 100,
        "subset_size": 224,
        "abs": False,
        "normalise": True,
        "normalise_func_kwargs": None,
        "perturb_baseline": "black",
        "return_aggregate": True,
    },
    "faithfulness_estimate": {
        "features_in_step": 1,
        "abs": False,
        "normalise": True,
        "normalise_func_kwargs": None,
        "perturb_baseline": "black",
    },
    "complexity": _MAP,
    "sparseness": _MAP,
}
"""Every metric of this package by name: the settings an entry may change, with their defaults
(Quantus 0.6's)."""


def options(name: str) -> dict[str, Any]:
    """The settings a metric's entry may change and their defaults; an unknown metric is an error
    naming the known ones. A metric of a module ``ROBINTERP_METRIC_MODULES`` names is read from
    that module (importing it, and what it imports)."""
    known = {**OPTIONS, **_outside(units.module_names_outside(ENVIRONMENT))}
    if name not in known:
        hint = difflib.get_close_matches(str(name), list(known), n=1)
        also = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise RobinterpError(f"unknown explanation metric {name!r}{also}; choose from {', '.join(known)}")
    return known[name]


@functools.cache
def _outside(names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The options of the metrics of modules outside the package: each module's ``METRIC``'s score
    function's keyword arguments after the first (``robinterp.explanation_quality.Metric``)."""
    found = {}
    for dotted, module in units.imported(names, "robinterp.explanation_quality", ENVIRONMENT, "explanation-metric"):
        metric = getattr(module, "METRIC", None)
        score = getattr(metric, "score", None)
        if not callable(score):
            raise RobinterpError(f"{dotted} defines no METRIC = Metric(...)")
        parameters = list(inspect.signature(score).parameters.values())[1:]
        found[metric.name] = {p.name: p.default for p in parameters}
    return found


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """A metric and the settings an entry changes (Quantus constructor arguments), bound once:
    an unknown metric or setting stops a run before any work."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        accepted = options(self.name)
        for key, value in self.options:
            if key not in accepted:
                raise RobinterpError(
                    f"metric {self.name!r} has no setting {key!r}; it takes {', '.join(accepted) or 'none'}"
                )
            default = accepted[key]
            if not isinstance(value, SETTING_TYPES) or (
                default is not None and (isinstance(value, bool) != isinstance(default, bool))
            ):
                raise RobinterpError(
                    f"metric {self.name!r}: {key} must be like its default {default!r}, got {shown(value)}"
                )
        # one spelling per setting, so equal settings key equal whichever way they were written
        object.__setattr__(self, "options", tuple(sorted(self.options)))


@dataclasses.dataclass(frozen=True)
class MetricEntry:
    """One metric a chapter scores: its label on the page and the bound metric."""

    label: str
    spec: MetricSpec

    @classmethod
    def of(cls, name: str, **options: Any) -> MetricEntry:
        """The metric ``name`` under its own name as label."""
        return cls(name, MetricSpec(name, tuple(options.items())))

    @classmethod
    def from_config(cls, name: str, value: Any) -> tuple[MetricEntry, ...]:
        """Entries from ``{label: {metric: NAME, SETTING: VALUE, ...}}``."""
        if isinstance(value, tuple) and all(isinstance(v, cls) for v in value):
            value = cls.to_config(value)
        return entry_table(
            name,
            value,
            "metric",
            "{sparseness: {metric: sparseness}}",
            lambda where, label, item: cls(
                label, MetricSpec(item["metric"], tuple((k, v) for k, v in item.items() if k != "metric"))
            ),
        )

    @classmethod
    def to_config(cls, entries: tuple[MetricEntry, ...]) -> dict[str, dict[str, Any]]:
        """The inverse of ``from_config`` (what a parameters cell or a YAML file would say)."""
        return {entry.label: {"metric": entry.spec.name, **dict(entry.spec.options)} for entry in entries}

    def describe(self) -> str:
        """The metric and the settings the entry changes, e.g. ``max_sensitivity (lower_bound 0.1)``."""
        changed = ", ".join(f"{k} {v}" for k, v in self.spec.options)
        return f"{self.spec.name} ({changed})" if changed else self.spec.name


def metric_table(value: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[MetricEntry, ...]:
    """A chapter config's default ``metrics``, written as its YAML would be (None: the ``SEVEN``,
    each under its own name)."""
    return MetricEntry.from_config("metrics", {name: {"metric": name} for name in SEVEN} if value is None else value)


def entries(metrics: Sequence[str | MetricEntry] | None = None) -> tuple[MetricEntry, ...]:
    """Metric entries from entries or names (a name is its own label); None: the ``SEVEN``."""
    listed = tuple(
        m if isinstance(m, MetricEntry) else MetricEntry.of(m) for m in (SEVEN if metrics is None else metrics)
    )
    labels = [entry.label for entry in listed]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise RobinterpError(f"metric label {twice[0]!r} is listed twice; give each entry its own label")
    return listed
