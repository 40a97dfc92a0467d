"""Explanation-quality metrics: Quantus's definitions, computed by robinterp in batches.

``scores(model, x, y, metrics, explainer=..., samples=..., seed=...)`` returns a tidy
table (metric, image, score). Every Quantus setting that differs from Quantus's
default is in ``METRICS`` below, each with the reason, so a chapter can print them.

**Adding a metric**: a ``MetricSpec`` in ``METRICS`` (the Quantus class it mirrors and
the settings it changes) and robinterp's batched function in ``VECTORIZED``, with a
test that the two agree.

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
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from robinterp import RobinterpError, device, explain
from robinterp.models import eval_mode

PER_IMAGE = {"normalise_axes": (1, 2, 3)}


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """A Quantus metric, the settings robinterp changes, and which way is better."""

    quantus_name: str
    higher_is_better: bool
    settings: Callable[[int, int, float | None], dict[str, Any]]
    """(samples, pixels per channel, noise) -> constructor arguments that differ from Quantus's defaults."""
    why: str


METRICS: dict[str, MetricSpec] = {
    "max_sensitivity": MetricSpec(
        "MaxSensitivity",
        False,
        lambda samples, pixels, noise: {"nr_samples": samples, **_given("lower_bound", noise)},
        "nr_samples lowered from 200 to fit the CPU; uniform noise of radius `noise` "
        "(Quantus: 0.2, as large as a stroke's contrast on MNIST)",
    ),
    "avg_sensitivity": MetricSpec(
        "AvgSensitivity",
        False,
        lambda samples, pixels, noise: {"nr_samples": samples, **_given("lower_bound", noise)},
        "as max_sensitivity",
    ),
    "local_lipschitz": MetricSpec(
        "LocalLipschitzEstimate",
        False,
        lambda samples, pixels, noise: {
            "nr_samples": samples,
            "normalise_func_kwargs": PER_IMAGE,
            **_given("perturb_std", noise),
        },
        "nr_samples lowered from 200; Gaussian noise of sd `noise` (Quantus: 0.1); attributions "
        "normalised per image, not per batch",
    ),
    "faithfulness_correlation": MetricSpec(
        "FaithfulnessCorrelation",
        True,
        lambda samples, pixels, noise: {
            "nr_runs": samples,
            "subset_size": image_width(pixels),
            "return_aggregate": False,
            "normalise_func_kwargs": PER_IMAGE,
        },
        "subset_size is one image row's worth of features, the image width: Quantus's 224 is "
        "that on 224x224 ImageNet, but 29% of a 28x28 image; nr_runs lowered from 100; one "
        "score per image",
    ),
    "faithfulness_estimate": MetricSpec(
        "FaithfulnessEstimate",
        True,
        lambda samples, pixels, noise: {
            "features_in_step": divisor_at_most(pixels, image_width(pixels)),
            "normalise_func_kwargs": PER_IMAGE,
        },
        "features_in_step 1 means one forward pass per pixel; one image row's worth (the largest "
        "divisor of the pixels up to the image width) is that many times faster",
    ),
    "complexity": MetricSpec("Complexity", False, lambda samples, pixels, noise: {}, "Quantus's defaults"),
    "sparseness": MetricSpec("Sparseness", True, lambda samples, pixels, noise: {}, "Quantus's defaults"),
}

IMPLEMENTATIONS = ("robinterp", "quantus")


def _given(name: str, value: float | None) -> dict[str, float]:
    return {} if value is None else {name: value}


def image_width(pixels: int) -> int:
    """The side of a square image of ``pixels`` pixels (28 on MNIST, 224 on ImageNette)."""
    return max(1, math.isqrt(pixels))


def divisor_at_most(n: int, limit: int) -> int:
    """The largest divisor of ``n`` not above ``limit`` (Quantus needs steps that tile the image)."""
    return max(k for k in range(1, max(1, limit) + 1) if n % k == 0)


def get_metric(name: str) -> MetricSpec:
    if name not in METRICS:
        raise RobinterpError(f"unknown explanation metric {name!r}; choose from {', '.join(METRICS)}")
    return METRICS[name]


def summed_attribution(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, explainer: str, options: dict[str, Any]
) -> torch.Tensor:
    """robinterp's attribution summed over channels, (n, 1, H, W), on x's device."""
    attribution = explain.get_explainer(explainer)(model, x.clone().requires_grad_(True), target, **options)
    return attribution.sum(dim=1, keepdim=True).detach()


def quantus_explain_func(
    model: nn.Module,
    inputs: np.ndarray,
    targets: np.ndarray,
    *,
    explainer: str = "integrated_gradients",
    device: Any = None,
    **options: Any,
) -> np.ndarray:
    """The explain_func Quantus calls: numpy in, robinterp's attribution summed over channels out."""
    parameter = next(model.parameters())
    x = torch.as_tensor(inputs, dtype=parameter.dtype, device=parameter.device)
    target = torch.as_tensor(targets, dtype=torch.long, device=parameter.device)
    return summed_attribution(model, x, target, explainer, options).cpu().numpy()


def metric_settings(samples: int, n_features: int, noise: float | None = None) -> pd.DataFrame:
    """Every non-default Quantus setting per metric, for a chapter to print."""
    return pd.DataFrame(
        [
            {
                "metric": name,
                "quantus class": spec.quantus_name,
                "better": "higher" if spec.higher_is_better else "lower",
                "changed settings": spec.settings(samples, n_features, noise),
                "why": spec.why,
            }
            for name, spec in METRICS.items()
        ]
    )


# --- robinterp's implementation ------------------------------------------------------
# Each metric is ``fn(evaluation, **settings) -> scores`` (one float64 score per image,
# on the model's device); its keyword defaults are Quantus 0.6's constructor defaults,
# so the settings of METRICS mean the same to both implementations.


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What every metric reads: the model, the images on its device, their attributions
    (computed once for all metrics) and how to explain or classify more inputs."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    attributions: torch.Tensor
    """(N, 1, H, W): the explainer's attributions of x, summed over channels."""
    explainer: str
    explainer_options: dict[str, Any]
    quantus_batch_size: int
    """Quantus draws its random numbers per batch of this many images; we draw in the same order."""
    images_per_call: int
    """The most images in one explainer call or forward pass: bounds the memory."""
    shared_tables: dict[tuple, tuple[torch.Tensor, tuple]] = dataclasses.field(default_factory=dict, repr=False)
    """Per-copy tables two metrics share, by what they computed and numpy's generator state."""

    def explain(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return explained_in_calls(
            self.model, inputs, targets, self.explainer, self.explainer_options, self.images_per_call
        )

    @torch.no_grad()
    def logits(self, inputs: Callable[[slice], torch.Tensor], n: int) -> torch.Tensor:
        """The model's logits of ``inputs(rows)`` for all n rows, built a call's worth at a time."""
        return torch.cat(
            [self.model(inputs(slice(i, i + self.images_per_call))) for i in range(0, n, self.images_per_call)]
        )

    @functools.cached_property
    def clean_logits(self) -> torch.Tensor:
        """The logits of x, computed once: the classes and target logits metrics compare against."""
        return self.logits(lambda rows: self.x[rows], len(self.x))


def explained_in_calls(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    explainer: str,
    options: dict[str, Any],
    images_per_call: int,
) -> torch.Tensor:
    """summed_attribution of every input, ``images_per_call`` inputs per explainer call."""
    return torch.cat(
        [
            summed_attribution(
                model, inputs[i : i + images_per_call], targets[i : i + images_per_call], explainer, options
            )
            for i in range(0, len(inputs), images_per_call)
        ]
    )


def prepare_evaluation(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    explainer: str,
    explainer_options: dict[str, Any],
    quantus_batch_size: int = 64,
    images_per_call: int = 512,
) -> Evaluation:
    """Images moved to the model's device and explained once; call in eval mode."""
    parameter = next(model.parameters())
    x = x.detach().to(device=parameter.device, dtype=parameter.dtype)
    y = y.detach().to(device=parameter.device, dtype=torch.long)
    attributions = explained_in_calls(model, x, y, explainer, explainer_options, images_per_call)
    return Evaluation(
        model, x, y, attributions, explainer, dict(explainer_options), quantus_batch_size, images_per_call
    )


@dataclasses.dataclass(frozen=True)
class NoisyChunk:
    """Noisy copies of one batch of images for some samples, and their explanations; rows in
    Quantus's draw order: sample after sample, image after image."""

    inputs: torch.Tensor
    attributions: torch.Tensor
    image: torch.Tensor
    sample: torch.Tensor
    call: torch.Tensor
    """Which of Quantus's explainer calls (one per batch and sample) explains the row."""


def noisy_chunks(
    evaluation: Evaluation, nr_samples: int, draw: Callable[[tuple[int, int]], np.ndarray]
) -> Iterator[NoisyChunk]:
    """``nr_samples`` noisy copies of every image, x + ``draw(shape)`` rounded to x's dtype,
    explained, one batch of images and as many samples as ``images_per_call`` copies allow
    (at least one) at a time.

    Quantus draws (batch, features) noise per batch of images and sample; numpy's legacy
    generator gives the same stream for one draw of several samples' rows, so a chunk
    draws its rows at once. Only one chunk is in memory: 1000 ImageNet-size images with
    50 samples would be 30 GB of noisy copies.
    """
    x, batch_size = evaluation.x, evaluation.quantus_batch_size
    for start in range(0, len(x), batch_size):
        batch = torch.arange(start, min(start + batch_size, len(x)), device=x.device)
        samples_per_chunk = max(1, evaluation.images_per_call // len(batch))
        for first in range(0, nr_samples, samples_per_chunk):
            sample = torch.arange(first, min(first + samples_per_chunk, nr_samples), device=x.device).repeat_interleave(
                len(batch)
            )
            image = batch.repeat(len(sample) // len(batch))
            noise = torch.from_numpy(draw((len(image), x[0].numel()))).to(x.device)
            # Quantus adds float64 noise to the float32 image and stores the sum in float32
            inputs = (x.flatten(1)[image].double() + noise).to(x.dtype).reshape(-1, *x.shape[1:])
            yield NoisyChunk(
                inputs,
                evaluation.explain(inputs, evaluation.y[image]),
                image,
                sample,
                start // batch_size * nr_samples + sample,
            )


def noisy_table(
    evaluation: Evaluation,
    nr_samples: int,
    draw: Callable[[tuple[int, int]], np.ndarray],
    row_value: Callable[[NoisyChunk], torch.Tensor],
    share_as: tuple | None = None,
) -> torch.Tensor:
    """``row_value`` of every noisy copy as an (image, sample) float64 table.

    ``share_as``: a key naming the noise and the row value; an equal key from an equal
    generator state reuses the table (max and avg sensitivity share theirs, as Quantus
    draws the same noise for both), and leaves the generator where the draw would have.
    """
    if share_as is not None:
        state = np.random.get_state()
        share_as = (share_as, nr_samples, state[1].tobytes(), *state[2:])
        if share_as in evaluation.shared_tables:
            table, state_after = evaluation.shared_tables[share_as]
            np.random.set_state(state_after)
            return table
    table = torch.full((len(evaluation.x), nr_samples), math.nan, dtype=torch.float64, device=evaluation.x.device)
    for chunk in noisy_chunks(evaluation, nr_samples, draw):
        table[chunk.image, chunk.sample] = row_value(chunk).double()
    if share_as is not None:
        evaluation.shared_tables[share_as] = (table, np.random.get_state())
    return table


def normalised(
    attributions: torch.Tensor,
    calls: torch.Tensor | None,
    normalise: bool,
    normalise_func_kwargs: dict[str, Any] | None,
    absolute: bool,
) -> torch.Tensor:
    """Quantus's treatment of attributions before a score, rows flattened: normalise_by_max
    (per image, or over each explainer call's output when no axes are given; a call whose
    output is all zero is left as it is), then the absolute value if asked.

    ``calls``: which call produced each row (None: one call, as Quantus treats a_batch).
    """
    a = attributions.flatten(1)
    if normalise:
        axes = (normalise_func_kwargs or {}).get("normalise_axes")
        by_image = axes is not None and tuple(axes) == tuple(range(1, attributions.ndim))
        if axes is not None and not by_image:
            raise RobinterpError(
                f"normalise_axes {tuple(axes)} is not supported by robinterp's metrics "
                f"(per image {tuple(range(1, attributions.ndim))} or none); "
                f"use implementation='quantus'"
            )
        calls = torch.zeros(len(a), dtype=torch.long, device=a.device) if calls is None else calls
        image_max = a.abs().amax(1)
        call_max = torch.zeros(int(calls.max()) + 1, dtype=a.dtype, device=a.device).scatter_reduce(
            0, calls, image_max, "amax"
        )[calls]
        divisor = image_max if by_image else call_max
        a = torch.where((call_max == 0)[:, None], a, a / divisor[:, None])
    return a.abs() if absolute else a


def quantus_draw_order(n_images: int, batch_size: int, repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """(image, repeat) of every row in Quantus's order: per batch of images, repeat after repeat."""
    image, repeat = [], []
    for start in range(0, n_images, batch_size):
        batch = np.arange(start, min(start + batch_size, n_images))
        image.append(np.tile(batch, repeats))
        repeat.append(np.repeat(np.arange(repeats), len(batch)))
    return np.concatenate(image), np.concatenate(repeat)


def per_image(
    values: torch.Tensor, image: torch.Tensor, repeat: torch.Tensor, n_images: int, repeats: int
) -> torch.Tensor:
    """Row values as an (image, repeat) float64 table."""
    table = torch.full((n_images, repeats), math.nan, dtype=torch.float64, device=values.device)
    table[image, repeat] = values.double()
    return table


def predicted_class(logits: torch.Tensor, softmax: bool) -> torch.Tensor:
    """The class Quantus's model wrapper predicts: argmax of the logits or of their softmax."""
    return (logits.softmax(-1) if softmax else logits).argmax(-1)


def prediction_changed(evaluation: Evaluation, chunk: NoisyChunk, softmax: bool) -> torch.Tensor:
    """Per noisy copy: does the model predict another class than for its clean image?"""
    noisy_logits = evaluation.logits(lambda rows: chunk.inputs[rows], len(chunk.inputs))
    return predicted_class(evaluation.clean_logits, softmax)[chunk.image] != predicted_class(noisy_logits, softmax)


def max_or_mean(table: torch.Tensor, reduce: str, nan_when_prediction_changes: bool) -> torch.Tensor:
    """Quantus's aggregation over samples: np.max / np.mean when a changed prediction is to make
    the score NaN, np.nanmax / np.nanmean otherwise."""
    if nan_when_prediction_changes:
        return table.amax(1) if reduce == "max" else table.mean(1)
    if reduce == "mean":
        return table.nanmean(1)
    nan = table.isnan()
    return torch.where(nan.all(1), math.nan, table.masked_fill(nan, -math.inf).amax(1))


def _sensitivity(
    evaluation: Evaluation,
    reduce: str,
    *,
    nr_samples: int,
    lower_bound: float,
    upper_bound: float | None,
    abs: bool,
    normalise: bool,
    normalise_func_kwargs: dict[str, Any] | None,
    return_nan_when_prediction_changes: bool,
) -> torch.Tensor:
    """max/avg over samples of ||a(x) - a(x + noise)|| / ||a(x)||, the noise uniform as in
    Quantus's batch_uniform_noise."""
    low, high = (-lower_bound, lower_bound) if upper_bound is None else (lower_bound, upper_bound)
    a = normalised(evaluation.attributions, None, normalise, normalise_func_kwargs, abs)
    a_norm = a.norm(dim=1)

    def ratio(chunk: NoisyChunk) -> torch.Tensor:
        a_noisy = normalised(chunk.attributions, chunk.call, normalise, normalise_func_kwargs, abs)
        value = (a[chunk.image] - a_noisy).norm(dim=1) / a_norm[chunk.image]
        if return_nan_when_prediction_changes:
            value = value.masked_fill(prediction_changed(evaluation, chunk, softmax=False), math.nan)
        return value

    table = noisy_table(
        evaluation,
        nr_samples,
        lambda shape: np.random.uniform(low, high, shape),
        ratio,
        share_as=(
            "sensitivity",
            low,
            high,
            abs,
            normalise,
            repr(normalise_func_kwargs),
            return_nan_when_prediction_changes,
        ),
    )
    return max_or_mean(table, reduce, return_nan_when_prediction_changes)


def max_sensitivity(
    evaluation: Evaluation,
    *,
    nr_samples: int = 200,
    lower_bound: float = 0.2,
    upper_bound: float | None = None,
    abs: bool = False,
    normalise: bool = False,
    normalise_func_kwargs: dict[str, Any] | None = None,
    return_nan_when_prediction_changes: bool = False,
) -> torch.Tensor:
    """Quantus's MaxSensitivity (Yeh et al. 2019)."""
    return _sensitivity(
        evaluation,
        "max",
        nr_samples=nr_samples,
        lower_bound=lower_bound,
        upper_bound=upper_bound,
        abs=abs,
        normalise=normalise,
        normalise_func_kwargs=normalise_func_kwargs,
        return_nan_when_prediction_changes=return_nan_when_prediction_changes,
    )


def avg_sensitivity(
    evaluation: Evaluation,
    *,
    nr_samples: int = 200,
    lower_bound: float = 0.2,
    upper_bound: float | None = None,
    abs: bool = False,
    normalise: bool = False,
    normalise_func_kwargs: dict[str, Any] | None = None,
    return_nan_when_prediction_changes: bool = False,
) -> torch.Tensor:
    """Quantus's AvgSensitivity (Yeh et al. 2019)."""
    return _sensitivity(
        evaluation,
        "mean",
        nr_samples=nr_samples,
        lower_bound=lower_bound,
        upper_bound=upper_bound,
        abs=abs,
        normalise=normalise,
        normalise_func_kwargs=normalise_func_kwargs,
        return_nan_when_prediction_changes=return_nan_when_prediction_changes,
    )


def local_lipschitz(
    evaluation: Evaluation,
    *,
    nr_samples: int = 200,
    perturb_mean: float = 0.0,
    perturb_std: float = 0.1,
    abs: bool = False,
    normalise: bool = True,
    normalise_func_kwargs: dict[str, Any] | None = None,
    return_nan_when_prediction_changes: bool = False,
) -> torch.Tensor:
    """Quantus's LocalLipschitzEstimate (Alvarez-Melis and Jaakkola 2018): max over Gaussian
    noise of ||a(x) - a(x')||_2 / (||x - x'||_2 + 1e-10)."""
    a = normalised(evaluation.attributions, None, normalise, normalise_func_kwargs, abs)

    def ratio(chunk: NoisyChunk) -> torch.Tensor:
        a_noisy = normalised(chunk.attributions, chunk.call, normalise, normalise_func_kwargs, abs)
        x_distance = (evaluation.x.flatten(1)[chunk.image] - chunk.inputs.flatten(1)).norm(dim=1)
        value = (a[chunk.image] - a_noisy).norm(dim=1) / (x_distance + 1e-10)
        if return_nan_when_prediction_changes:
            # LocalLipschitzEstimate's call defaults to softmax=True: argmax of the probabilities
            value = value.masked_fill(prediction_changed(evaluation, chunk, softmax=True), math.nan)
        return value

    table = noisy_table(evaluation, nr_samples, lambda shape: np.random.normal(perturb_mean, perturb_std, shape), ratio)
    return max_or_mean(table, "max", return_nan_when_prediction_changes)


def _check_black_baseline(perturb_baseline: str) -> None:
    if perturb_baseline != "black":
        raise RobinterpError(
            f"perturb_baseline {perturb_baseline!r} is not supported by robinterp's "
            f"metrics (only 'black'); use implementation='quantus'"
        )


def target_logit_drops(evaluation: Evaluation, image: torch.Tensor, blackened: torch.Tensor) -> torch.Tensor:
    """Per row: the target logit of image ``image[r]`` minus that of the image with the features
    ``blackened[r]`` set to the image's minimum (Quantus's "black" baseline)."""
    x = evaluation.x.flatten(1)
    black = x.amin(1)
    target = evaluation.y[:, None]
    target_logits = evaluation.clean_logits.gather(1, target)[:, 0]

    def perturbed(rows: slice) -> torch.Tensor:
        images, features = image[rows], blackened[rows]
        return (
            x[images].scatter(1, features, black[images, None].expand_as(features)).reshape(-1, *evaluation.x.shape[1:])
        )

    perturbed_logits = evaluation.logits(perturbed, len(image)).gather(1, target[image])[:, 0]
    return target_logits[image] - perturbed_logits


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """scipy.stats.pearsonr along rows (Quantus's correlation_pearson), in float64 (scipy
    keeps Quantus's float32); NaN where either input is constant, as scipy."""
    constant = (a == a[:, :1]).all(1) | (b == b[:, :1]).all(1)
    a, b = a.double(), b.double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    r = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
    return r.clamp(-1, 1).masked_fill(constant, math.nan)


def faithfulness_correlation(
    evaluation: Evaluation,
    *,
    nr_runs: int = 100,
    subset_size: int = 224,
    abs: bool = False,
    normalise: bool = True,
    normalise_func_kwargs: dict[str, Any] | None = None,
    perturb_baseline: str = "black",
    return_aggregate: bool = True,
) -> torch.Tensor:
    """Quantus's FaithfulnessCorrelation (Bhatt et al. 2020): Pearson correlation, over runs, of
    the attribution sum of a random feature subset and the target logit's drop when the
    subset is blackened."""
    _check_black_baseline(perturb_baseline)
    if return_aggregate:
        raise RobinterpError("scores are per image: faithfulness_correlation needs return_aggregate=False")
    x = evaluation.x
    a = normalised(evaluation.attributions, None, normalise, normalise_func_kwargs, abs)
    a = a.reshape(evaluation.attributions.shape).expand_as(x).flatten(1)  # Quantus broadcasts a over channels
    image, run = quantus_draw_order(len(x), evaluation.quantus_batch_size, nr_runs)
    # np.random.choice without replacement has no batched form with Quantus's stream: the
    # loop is over draws only; model passes and arithmetic are batched below
    subsets = []
    for start in range(0, len(x), evaluation.quantus_batch_size):
        batch = min(evaluation.quantus_batch_size, len(x) - start)
        for _ in range(nr_runs):
            subsets += [np.random.choice(a.shape[1], subset_size, replace=False) for _ in range(batch)]
            # Quantus's get_baseline_dict draws a "uniform" baseline on every perturbation,
            # whichever baseline is used; drawn to stay in step with its stream
            np.random.uniform(0.0, 1.0, size=batch)
    blackened = torch.from_numpy(np.stack(subsets)).to(x.device)
    image_t, run_t = (torch.from_numpy(v).to(x.device) for v in (image, run))
    attribution_sums = per_image(a[image_t[:, None], blackened].sum(1), image_t, run_t, len(x), nr_runs)
    drops = per_image(target_logit_drops(evaluation, image_t, blackened), image_t, run_t, len(x), nr_runs)
    return pearson(attribution_sums, drops)


def faithfulness_estimate(
    evaluation: Evaluation,
    *,
    features_in_step: int = 1,
    abs: bool = False,
    normalise: bool = True,
    normalise_func_kwargs: dict[str, Any] | None = None,
    perturb_baseline: str = "black",
) -> torch.Tensor:
    """Quantus's FaithfulnessEstimate (Alvarez-Melis and Jaakkola 2018): Pearson correlation,
    over steps of ``features_in_step`` features in decreasing attribution, of their
    attribution sum and the target logit's drop when they are blackened."""
    _check_black_baseline(perturb_baseline)
    x = evaluation.x
    a = normalised(evaluation.attributions, None, normalise, normalise_func_kwargs, abs)
    a = a.reshape(evaluation.attributions.shape).expand_as(x).flatten(1)
    n_features = a.shape[1]
    if n_features % features_in_step:
        raise RobinterpError(f"features_in_step {features_in_step} must divide the {n_features} features")
    steps = n_features // features_in_step
    # numpy's argsort (not stable) orders tied attributions as Quantus does; torch's may not,
    # and a tie at a step boundary changes which features a step blackens
    order = torch.from_numpy(np.argsort(-a.cpu().numpy(), axis=1)).to(x.device)
    attribution_sums = a.gather(1, order).reshape(len(x), steps, features_in_step).sum(2)
    image = torch.arange(len(x), device=x.device).repeat(steps)
    step = torch.arange(steps, device=x.device).repeat_interleave(len(x))
    blackened = order.reshape(len(x), steps, features_in_step)[image, step]
    # Quantus also draws (and ignores) a "uniform" baseline per step; no score depends on it
    drops = target_logit_drops(evaluation, image, blackened).reshape(steps, len(x)).T
    return pearson(attribution_sums, drops)


def complexity(
    evaluation: Evaluation,
    *,
    abs: bool = True,
    normalise: bool = True,
    normalise_func_kwargs: dict[str, Any] | None = None,
) -> torch.Tensor:
    """Quantus's Complexity (Bhatt et al. 2020): entropy of the attribution's share per feature."""
    a = normalised(evaluation.attributions, None, normalise, normalise_func_kwargs, abs)
    a = a / a.abs().sum(1, keepdim=True)
    return -(a * torch.log(a + 1e-12)).sum(1).double()


def sparseness(
    evaluation: Evaluation,
    *,
    abs: bool = True,
    normalise: bool = True,
    normalise_func_kwargs: dict[str, Any] | None = None,
) -> torch.Tensor:
    """Quantus's Sparseness (Chalasani et al. 2020): the Gini index of the attribution."""
    a = normalised(evaluation.attributions, None, normalise, normalise_func_kwargs, abs)
    a = (a + 1e-7).sort(1).values
    n = a.shape[1]
    weights = 2 * torch.arange(1, n + 1, dtype=torch.float64, device=a.device) - n - 1
    # Quantus: an int64 x float32 numerator (float64) over a float32 denominator
    return (weights * a.double()).sum(1) / (n * a.sum(1)).double()


VECTORIZED: dict[str, Callable[..., torch.Tensor]] = {
    "max_sensitivity": max_sensitivity,
    "avg_sensitivity": avg_sensitivity,
    "local_lipschitz": local_lipschitz,
    "faithfulness_correlation": faithfulness_correlation,
    "faithfulness_estimate": faithfulness_estimate,
    "complexity": complexity,
    "sparseness": sparseness,
}


def vectorized_scores(evaluation: Evaluation, name: str, settings: dict[str, Any]) -> torch.Tensor:
    """robinterp's scores of one metric under Quantus constructor ``settings``."""
    fn = VECTORIZED[name]
    unsupported = sorted(set(settings) - set(inspect.signature(fn).parameters))
    if unsupported:
        raise RobinterpError(f"robinterp's {name} does not take {', '.join(unsupported)}; use implementation='quantus'")
    return fn(evaluation, **settings)


# --- the table ---------------------------------------------------------------------------


def scores(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    metrics: tuple[str, ...] = tuple(METRICS),
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
    specs = {name: get_metric(name) for name in metrics}
    for name, value in (("samples", samples), ("images_per_call", images_per_call)):
        if not (isinstance(value, int) and value >= 1):
            raise RobinterpError(f"{name} must be an integer >= 1, got {value!r}")
    options = dict(explainer_options or {})
    n_features = int(np.prod(x.shape[2:]))
    settings = {name: spec.settings(samples, n_features, noise) for name, spec in specs.items()}
    # the random control and captum's noisy explainers (GradientSHAP's baselines and interpolation
    # points from numpy, their noise from torch) draw from the global generators at every call, as
    # under Quantus: seeded here, the scores follow ``seed``, not what drew before them
    torch.manual_seed(seed)
    np.random.seed(seed)
    with eval_mode(model):  # both score the model in eval mode; Quantus refuses training mode
        if implementation == "quantus":
            values = _quantus_scores(model, x, y, specs, settings, explainer, options, seed, batch_size)
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
            for name in specs:
                np.random.seed(seed)  # as Quantus is seeded before every metric
                values[name] = vectorized_scores(evaluation, name, settings[name]).cpu().tolist()
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
    specs: dict[str, MetricSpec],
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
    for name, spec in specs.items():
        metric = getattr(quantus, spec.quantus_name)(disable_warnings=True, display_progressbar=False, **settings[name])
        np.random.seed(seed)  # Quantus perturbs with numpy's global generator
        with warnings.catch_warnings():
            # "didn't cause change in input": black-baseline replacement of pixels
            # that are already black, about 4 in 5 MNIST pixels; expected here
            warnings.filterwarnings("ignore", message=".*didn't cause change in input.*")
            values[name] = metric(
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
