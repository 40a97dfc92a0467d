"""Explanation-quality metrics: Quantus's definitions, computed by robinterp in batches, one
module per metric, and their registry.

``scores(model, x, y, metrics, explainer=..., samples=..., seed=...)`` returns a tidy
table (metric, image, score). ``metrics`` lists entries (label -> metric and settings, as a
chapter's ``metrics`` setting does) or metric names; the ``metric`` column holds the labels.

**Adding a metric** is adding a module to this folder (or one ``ROBINTERP_METRIC_MODULES``
names, outside the package) with robinterp's batched function
``fn(evaluation, **settings) -> one score per image`` (its keyword arguments are the Quantus
class's constructor arguments, with Quantus's defaults; ``_evaluation`` holds what metrics
share) and ``METRIC = Metric(name, fn, __name__, quantus_name=..., higher_is_better=...,
settings=..., why=...)``, with a test that it agrees with the Quantus class. A chapter lists it
in its ``metrics`` setting; an entry may change any of the function's keyword arguments
(``{max sensitivity 0.1: {metric: max_sensitivity, lower_bound: 0.1}}``). A metric's rows are
keyed by its own module and what it imports, so editing one metric recomputes only its rows.

Choices made here (Quantus 0.6.0 read and measured on 28x28 MNIST):
- The explanation function is robinterp's own (``robinterp.explain``, captum),
  summed over colour channels as ``quantus.explain`` does. ``quantus.explain``
  fixes Integrated Gradients at 10 Riemann steps and ignores ``n_steps``; ours
  takes the explainer's options.
- Normalisation is per image (``normalise_axes=(1, 2, 3)``) for local Lipschitz and
  the two faithfulness metrics: Quantus's default divides by the maximum over the
  whole batch, which makes a score depend on which other images share its batch.
  Complexity and sparseness keep the batch maximum, as their scores do not depend on
  it (sparseness only through its 1e-7 offset); max and avg sensitivity do not
  normalise (Quantus's defaults).
- Quantus draws its perturbations from numpy's global generator; it is seeded
  before every metric, so a table is reproducible.
- Scores use the logits (``softmax=False``, Quantus's default for the call).
- Two implementations: ``implementation="robinterp"`` (the default) or ``"quantus"``.
  Quantus loops per batch of 64 images and per sample (one explainer call each) or
  per step (one forward pass each), and the docs' way recomputes the attributions of
  the images for every metric. robinterp's implementation (``VECTORIZED``) explains
  the images once for all metrics, explains the noisy copies once for max and avg
  sensitivity (Quantus draws the same noise for both), explains all noisy copies of
  all images in calls of up to ``images_per_call`` images (the memory bound), passes
  all faithfulness perturbations through the model in batches of that size, and
  keeps tensors on the model's device. Quantus stays the reference: robinterp's
  implementation draws the same random numbers from numpy's global generator in
  Quantus's order, so with the same seed the scores agree up to float32 round-off
  (tests/test_explanation_quality.py checks each metric against Quantus).
  Measured on the 2-core CPU (benchmarks/results/quantus.md): the seven metrics
  together take half the docs' way's time, which is the floor there: Integrated
  Gradients passes are about 90% of the time, and with S samples the seven need
  1 + 2S passes over the images (the images, S noisy copies for both sensitivities,
  S for local Lipschitz) where the docs' way makes 7 + 3S: 11 against 22 at S = 5.
  One metric alone makes the same passes as Quantus and costs the same: a 5x larger
  explainer call is not faster per image on that CPU.
  Two known differences: the random-attribution control gives max and avg
  sensitivity the same random maps of the noisy copies (Quantus draws fresh ones for
  the second metric; both are draws from one distribution), and an explainer whose
  output depends on how its inputs are batched (``random`` with a fixed ``seed``)
  sees other batches than under Quantus.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from robinterp import RobinterpError, device, units
from robinterp.explanation_quality._evaluation import Evaluation, prepare_evaluation, quantus_explain_func
from robinterp.models import eval_mode
from robinterp.settings.choices import METRIC_IMPLEMENTATIONS as IMPLEMENTATIONS

# what a chapter declares about metrics (entries, their settings) is read without torch there
from robinterp.settings.metrics import ENVIRONMENT, OPTIONS, MetricEntry, MetricSpec, entries


@dataclasses.dataclass(frozen=True)
class Metric:
    """An explanation-quality metric: robinterp's batched score, the Quantus class it mirrors,
    which way is better and the settings robinterp changes from Quantus's defaults."""

    name: str
    score: Callable[..., torch.Tensor]
    """``score(evaluation, **settings)``: one float64 score per image on the model's device; its
    keyword arguments are the Quantus class's constructor arguments, with Quantus's defaults."""
    module: str
    quantus_name: str | None
    """The Quantus class it mirrors (None: a metric Quantus does not have, scored by robinterp only)."""
    higher_is_better: bool
    settings: Callable[[int, int, float | None], dict[str, Any]]
    """(samples, pixels per channel, noise) -> constructor arguments that differ from Quantus's defaults."""
    why: str

    def options(self) -> dict[str, Any]:
        """The settings an entry may change (the score's keyword arguments) and their defaults."""
        parameters = list(inspect.signature(self.score).parameters.values())[1:]
        return {p.name: p.default for p in parameters}


@functools.cache
def _discover(names: tuple[str, ...]) -> dict[str, Metric]:
    found = units.registered(names, __name__, ENVIRONMENT, "explanation-metric", "METRIC", Metric)
    for name, metric in found.items():
        declared = OPTIONS.get(name)
        if metric.module.startswith(f"{__name__}.") and declared != metric.options():
            raise RobinterpError(
                f"metric {name!r}: its score function's settings differ from robinterp.settings.metrics.OPTIONS; "
                f"declare them there as the function takes them"
            )
    return found


def registry() -> dict[str, Metric]:
    """Every metric, by name: this package's modules and those the environment names."""
    return dict(_discover(units.module_names(__name__, __path__, ENVIRONMENT)))


def get_metric(name: str) -> Metric:
    metrics = registry()
    if name not in metrics:
        raise RobinterpError(f"unknown explanation metric {name!r}; choose from {', '.join(metrics)}")
    return metrics[name]


def spec_settings(spec: MetricSpec, samples: int, pixels: int, noise: float | None) -> dict[str, Any]:
    """The constructor arguments of a bound metric that differ from Quantus's: robinterp's, then
    the entry's."""
    return {**get_metric(spec.name).settings(samples, pixels, noise), **dict(spec.options)}


def spec_modules(spec: MetricSpec) -> tuple[str, ...]:
    """The module whose code computes a bound metric (what its rows are keyed by)."""
    return (get_metric(spec.name).module,)


def metric_settings(
    samples: int, n_features: int, noise: float | None = None, metrics: Sequence[str | MetricEntry] | None = None
) -> pd.DataFrame:
    """Every non-default Quantus setting per listed metric, for a chapter to print."""
    rows = []
    for entry in entries(metrics):
        metric = get_metric(entry.spec.name)
        why = metric.why + (f"; this entry sets {entry.describe()}" if entry.spec.options else "")
        rows.append(
            {
                "metric": entry.label,
                "quantus class": metric.quantus_name or "none (robinterp's only)",
                "better": "higher" if metric.higher_is_better else "lower",
                "changed settings": spec_settings(entry.spec, samples, n_features, noise),
                "why": why,
            }
        )
    return pd.DataFrame(rows)


def vectorized_scores(evaluation: Evaluation, name: str, settings: dict[str, Any]) -> torch.Tensor:
    """robinterp's scores of one metric under Quantus constructor ``settings``."""
    fn = get_metric(name).score
    unsupported = sorted(set(settings) - set(inspect.signature(fn).parameters))
    if unsupported:
        raise RobinterpError(f"robinterp's {name} does not take {', '.join(unsupported)}; use implementation='quantus'")
    return fn(evaluation, **settings)


def scores(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    metrics: Sequence[str | MetricEntry] | None = None,
    *,
    explainer: str = "integrated_gradients",
    explainer_options: dict[str, Any] | None = None,
    samples: int = 10,
    noise: float | None = None,
    seed: int = 0,
    batch_size: int = 64,
    implementation: str = "robinterp",
    images_per_call: int = 512,
) -> pd.DataFrame:
    """Scores of ``explainer``'s attributions on (x, y) under each metric: columns metric, image, score.

    ``metrics``: entries or names (None: the ``SEVEN``); ``metric`` holds their labels.

    ``noise``: the perturbation size of the three sensitivity metrics (None: Quantus's).
    ``batch_size``: the images Quantus evaluates at once; robinterp's implementation draws
    its random numbers in the same grouping, so both give the same scores.
    ``seed``: the global generators' seed, set first (the explainers' draws) and again before
    each metric (Quantus's perturbations).
    ``implementation``: "robinterp" (batched, see the module docstring) or "quantus".
    ``images_per_call``: robinterp's implementation only: the most images in one explainer
    call or forward pass, a memory bound. 512 is the internal_batch_size of robinterp's
    Integrated Gradients, so captum still batches whole steps of a call's images.
    """
    if implementation not in IMPLEMENTATIONS:
        raise RobinterpError(f"unknown implementation {implementation!r}; choose from {', '.join(IMPLEMENTATIONS)}")
    listed = entries(metrics)
    for name, value in (("samples", samples), ("images_per_call", images_per_call)):
        if not (isinstance(value, int) and value >= 1):
            raise RobinterpError(f"{name} must be an integer >= 1, got {value!r}")
    options = dict(explainer_options or {})
    n_features = int(np.prod(x.shape[2:]))
    settings = {entry.label: spec_settings(entry.spec, samples, n_features, noise) for entry in listed}
    # the random control and captum's noisy explainers (GradientSHAP's baselines and interpolation
    # points from numpy, their noise from torch) draw from the global generators at every call, as
    # under Quantus: seeded here, the scores follow ``seed``, not what drew before them
    torch.manual_seed(seed)
    np.random.seed(seed)
    with eval_mode(model):  # both score the model in eval mode; Quantus refuses training mode
        if implementation == "quantus":
            values = _quantus_scores(model, x, y, listed, settings, explainer, options, seed, batch_size)
        else:
            evaluation = prepare_evaluation(
                model,
                x,
                y,
                explainer=explainer,
                explainer_options=options,
                quantus_batch_size=batch_size,
                images_per_call=images_per_call,
            )
            values = {}
            for entry in listed:
                np.random.seed(seed)  # as Quantus is seeded before every metric
                scored = vectorized_scores(evaluation, entry.spec.name, settings[entry.label])
                values[entry.label] = scored.cpu().tolist()
    return pd.DataFrame(
        [
            {"metric": name, "image": i, "score": float(v)}
            for name, metric_values in values.items()
            for i, v in enumerate(metric_values)
        ]
    )


def _quantus_scores(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    listed: tuple[MetricEntry, ...],
    settings: dict[str, dict[str, Any]],
    explainer: str,
    options: dict[str, Any],
    seed: int,
    batch_size: int,
) -> dict[str, list[float]]:
    """Quantus's metric classes, fed numpy and our explain_func."""
    import quantus

    options = dict(options, explainer=explainer)
    x_np, y_np = x.detach().cpu().numpy(), y.detach().cpu().numpy()
    attributions = quantus_explain_func(model, x_np, y_np, **options)
    values = {}
    for entry in listed:
        quantus_name = get_metric(entry.spec.name).quantus_name
        if quantus_name is None:
            raise RobinterpError(f"metric {entry.spec.name!r} has no Quantus class; use implementation='robinterp'")
        quantus_class = getattr(quantus, quantus_name)
        metric = quantus_class(disable_warnings=True, display_progressbar=False, **settings[entry.label])
        np.random.seed(seed)  # Quantus perturbs with numpy's global generator
        with warnings.catch_warnings():
            # "didn't cause change in input": black-baseline replacement of pixels
            # that are already black, about 4 in 5 MNIST pixels; expected here
            warnings.filterwarnings("ignore", message=".*didn't cause change in input.*")
            values[entry.label] = metric(
                model=model,
                x_batch=x_np,
                y_batch=y_np,
                a_batch=attributions.copy(),
                explain_func=quantus_explain_func,
                explain_func_kwargs=options,
                batch_size=batch_size,
                device=str(device.of(model)),  # Quantus feeds its own arrays to the model on this device
            )
    return values
