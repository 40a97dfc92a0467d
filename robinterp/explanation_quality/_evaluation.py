"""What every explanation-quality metric shares: the images explained once, their noisy copies
explained in bounded calls and in Quantus's draw order, Quantus's normalisation and aggregation,
and the faithfulness metrics' blackening. Each metric's own arithmetic is in its module.

Each metric is ``fn(evaluation, **settings) -> scores`` (one float64 score per image, on the
model's device); its keyword defaults are Quantus 0.6's constructor defaults, so a setting
means the same to both implementations.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from robinterp import RobinterpError, explain

PER_IMAGE = {"normalise_axes": (1, 2, 3)}
"""Normalisation per image: Quantus's default divides by the batch's maximum."""


def given(name: str, value: float | None) -> dict[str, float]:
    """``{name: value}``, or nothing when ``value`` is None (Quantus's default stays)."""
    return {} if value is None else {name: value}


def image_width(pixels: int) -> int:
    """The side of a square image of ``pixels`` pixels (28 on MNIST, 224 on ImageNette)."""
    return max(1, math.isqrt(pixels))


def divisor_at_most(n: int, limit: int) -> int:
    """The largest divisor of ``n`` not above ``limit`` (Quantus needs steps that tile the image)."""
    return max(k for k in range(1, max(1, limit) + 1) if n % k == 0)


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


def sensitivity(
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


def check_black_baseline(perturb_baseline: str) -> None:
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
