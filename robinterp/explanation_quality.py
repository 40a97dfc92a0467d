"""Explanation-quality metrics through Quantus, one registry entry per metric.

``scores(model, x, y, metrics, explainer=..., samples=..., seed=...)`` returns a tidy
table (metric, image, score). Every Quantus setting that differs from Quantus's
default is in ``METRICS`` below, each with the reason, so a chapter can print them.

Choices made here (Quantus 0.6.0 read and measured on 28x28 MNIST):
- The explanation function is robinterp's own (``robinterp.explain``, captum),
  summed over colour channels as ``quantus.explain`` does. ``quantus.explain``
  fixes Integrated Gradients at 10 Riemann steps and ignores ``n_steps``; ours
  takes the explainer's options.
- Normalisation is per image (``normalise_axes=(1, 2, 3)``): Quantus's default
  divides by the maximum over the whole batch, which makes a score depend on
  which other images share its batch.
- Quantus draws its perturbations from numpy's global generator; it is seeded
  before every metric, so a table is reproducible.
- Scores use the logits (``softmax=False``, Quantus's default for the call).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from robinterp import RobinterpError, explain
from robinterp.attacks import eval_mode

PER_IMAGE = {"normalise_axes": (1, 2, 3)}


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """A Quantus metric, the settings robinterp changes, and which way is better."""

    quantus_name: str
    higher_is_better: bool
    settings: Callable[[int, int, float | None], dict[str, Any]]
    """(samples, n_features, noise) -> constructor arguments that differ from Quantus's defaults."""
    why: str


METRICS: dict[str, MetricSpec] = {
    "max_sensitivity": MetricSpec(
        "MaxSensitivity", False, lambda s, d, r: {"nr_samples": s, **_given("lower_bound", r)},
        "nr_samples lowered from 200 to fit the CPU; uniform noise of radius `noise` "
        "(Quantus: 0.2, as large as a stroke's contrast on MNIST)"),
    "avg_sensitivity": MetricSpec(
        "AvgSensitivity", False, lambda s, d, r: {"nr_samples": s, **_given("lower_bound", r)},
        "as max_sensitivity"),
    "local_lipschitz": MetricSpec(
        "LocalLipschitzEstimate", False,
        lambda s, d, r: {"nr_samples": s, "normalise_func_kwargs": PER_IMAGE, **_given("perturb_std", r)},
        "nr_samples lowered from 200; Gaussian noise of sd `noise` (Quantus: 0.1); attributions "
        "normalised per image, not per batch"),
    "faithfulness_correlation": MetricSpec(
        "FaithfulnessCorrelation", True,
        lambda s, d, r: {"nr_runs": s, "subset_size": max(1, d // 28), "return_aggregate": False,
                      "normalise_func_kwargs": PER_IMAGE},
        "subset_size 224 is 29% of a 28x28 image (it was set for 224x224 ImageNet): we use "
        "one image row's worth of features (d / 28); nr_runs lowered from 100; one score per image"),
    "faithfulness_estimate": MetricSpec(
        "FaithfulnessEstimate", True,
        lambda s, d, r: {"features_in_step": divisor_at_most(d, max(1, d // 28)),
                      "normalise_func_kwargs": PER_IMAGE},
        "features_in_step 1 means one forward pass per pixel; the largest divisor of d up to "
        "d / 28 (28 on MNIST) is that many times faster"),
    "complexity": MetricSpec("Complexity", False, lambda s, d, r: {}, "Quantus's defaults"),
    "sparseness": MetricSpec("Sparseness", True, lambda s, d, r: {}, "Quantus's defaults"),
}


def _given(name: str, value: float | None) -> dict[str, float]:
    return {} if value is None else {name: value}


def divisor_at_most(n: int, limit: int) -> int:
    """The largest divisor of ``n`` not above ``limit`` (Quantus needs steps that tile the image)."""
    return max(k for k in range(1, max(1, limit) + 1) if n % k == 0)


def get_metric(name: str) -> MetricSpec:
    if name not in METRICS:
        raise RobinterpError(f"unknown explanation metric {name!r}; choose from {', '.join(METRICS)}")
    return METRICS[name]


def quantus_explain_func(model: nn.Module, inputs: np.ndarray, targets: np.ndarray, *,
                         explainer: str = "integrated_gradients", device: Any = None,
                         **options: Any) -> np.ndarray:
    """The explain_func Quantus calls: numpy in, robinterp's attribution summed over channels out."""
    fn = explain.get_explainer(explainer)
    parameter = next(model.parameters())
    x = torch.as_tensor(inputs, dtype=parameter.dtype, device=parameter.device)
    target = torch.as_tensor(targets, dtype=torch.long, device=parameter.device)
    attribution = fn(model, x.clone().requires_grad_(True), target, **options)
    return attribution.sum(dim=1, keepdim=True).detach().cpu().numpy()


def metric_settings(samples: int, n_features: int, noise: float | None = None) -> pd.DataFrame:
    """Every non-default Quantus setting per metric, for a chapter to print."""
    return pd.DataFrame([{"metric": name, "quantus class": spec.quantus_name,
                          "better": "higher" if spec.higher_is_better else "lower",
                          "changed settings": spec.settings(samples, n_features, noise), "why": spec.why}
                         for name, spec in METRICS.items()])


def scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, metrics: tuple[str, ...] = tuple(METRICS), *,
           explainer: str = "integrated_gradients", explainer_options: dict[str, Any] | None = None,
           samples: int = 10, noise: float | None = None, seed: int = 0,
           batch_size: int = 64) -> pd.DataFrame:
    """Scores of ``explainer``'s attributions on (x, y) under each metric: columns metric, image, score.

    ``noise``: the perturbation size of the three sensitivity metrics (None: Quantus's).
    """
    import quantus

    specs = {name: get_metric(name) for name in metrics}
    if not (isinstance(samples, int) and samples >= 1):
        raise RobinterpError(f"samples must be an integer >= 1, got {samples!r}")
    options = dict(explainer_options or {}, explainer=explainer)
    x_np, y_np = x.detach().cpu().numpy(), y.detach().cpu().numpy()
    n_features = int(np.prod(x_np.shape[2:]))
    rows = []
    with eval_mode(model):  # Quantus refuses a model in training mode
        attributions = quantus_explain_func(model, x_np, y_np, **options)
        for name, spec in specs.items():
            metric = getattr(quantus, spec.quantus_name)(
                disable_warnings=True, display_progressbar=False, **spec.settings(samples, n_features, noise))
            np.random.seed(seed)  # Quantus perturbs with numpy's global generator
            with warnings.catch_warnings():
                # "didn't cause change in input": black-baseline replacement of pixels
                # that are already black, about 4 in 5 MNIST pixels; expected here
                warnings.filterwarnings("ignore", message=".*didn't cause change in input.*")
                values = metric(model=model, x_batch=x_np, y_batch=y_np, a_batch=attributions.copy(),
                                explain_func=quantus_explain_func, explain_func_kwargs=options,
                                batch_size=batch_size)
            rows += [{"metric": name, "image": i, "score": float(v)} for i, v in enumerate(values)]
    return pd.DataFrame(rows)
