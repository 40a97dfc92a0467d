"""ROAR, remove and retrain (Hooker et al. 2019): an attribution is faithful when removing the
pixels it ranks highest, from the training and the test images alike, leaves a freshly trained
model less accurate than removing as many pixels at random.

Removal works on pixel positions: the attribution's absolute value is summed over channels,
positions are ranked from the most to the least relevant (ties in position order, so the
ranking is deterministic), and every channel of a removed pixel is replaced by that channel's
mean over the training images (Hooker et al.'s "uninformative" value). Every retrained model is
a cached model, keyed by the model whose attribution ranked the pixels, the ranking, the
fraction and the retraining spec.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from robinterp import cache, data, explain, models, train

RANDOM = "random"  # the control's ranking: a seeded random order, blind to any model
# what a retrained model sees: the images with the pixels removed, or only where they were
# removed (a binary mask: how much of the label the removal's shape alone gives away)
CONTENTS = ("image", "mask")
# the random control's independent draws per seed: one for the training images, one for the test ones
STREAMS = ("train", "test")


def order(attribution: torch.Tensor) -> torch.Tensor:
    """Pixel positions (N, H*W) from the most to the least relevant by |attribution| summed over
    channels; equal relevance keeps position order."""
    relevance = attribution.detach().abs().sum(1).flatten(1)
    return torch.sort(relevance, dim=1, descending=True, stable=True).indices


def random_order(shape: torch.Size | tuple[int, ...], seed: int, stream: str = "train") -> torch.Tensor:
    """A seeded random order of the pixel positions of every image of ``shape`` (N, C, H, W);
    each (seed, stream) draws independently of every other."""
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
    state = np.random.SeedSequence([seed, STREAMS.index(stream)]).generate_state(1)[0]
    generator = torch.Generator().manual_seed(int(state))
    return torch.rand((shape[0], shape[2] * shape[3]), generator=generator).argsort(dim=1)


def removed_count(pixels: int, fraction: float) -> int:
    """How many of ``pixels`` the ``fraction`` removes (rounded down; a float's last bit does not
    count: 0.6 of 10 is 6)."""
    return math.floor(pixels * fraction + 1e-9)


def remove(x: torch.Tensor, ranked: torch.Tensor, fraction: float, fill: torch.Tensor) -> torch.Tensor:
    """``x`` with the first ``fraction`` of each image's ``ranked`` positions replaced, in every
    channel, by ``fill`` (one value per channel); the other pixels are left as they are."""
    n, channels, height, width = x.shape
    count = removed_count(height * width, fraction)
    mask = torch.zeros(n, height * width, dtype=torch.bool, device=x.device)
    mask.scatter_(1, ranked[:, :count].to(x.device), True)
    mask = mask.view(n, 1, height, width)
    return torch.where(mask, fill.to(x).view(1, channels, 1, 1), x)


def removal_mask(x: torch.Tensor, ranked: torch.Tensor, fraction: float) -> torch.Tensor:
    """1 where ``remove`` would replace a pixel, 0 elsewhere, in every channel of ``x``'s shape."""
    return (remove(torch.zeros_like(x), ranked, fraction, torch.ones(x.shape[1], device=x.device)) > 0).to(x.dtype)


def modified(x: torch.Tensor, ranked: torch.Tensor, fraction: float, fill: torch.Tensor, content: str) -> torch.Tensor:
    """What a retrained model trains and is tested on: ``x`` with the top ``fraction`` removed
    (``content`` "image") or the removal's mask alone ("mask")."""
    if content not in CONTENTS:
        raise ValueError(f"content must be one of {CONTENTS}, got {content!r}")
    return remove(x, ranked, fraction, fill) if content == "image" else removal_mask(x, ranked, fraction)


def channel_mean(split: data.Split) -> torch.Tensor:
    """Per-channel mean of the images of ``split``: the value a removed pixel takes."""
    return split.images.mean(dim=(0, 2, 3))


@dataclasses.dataclass(frozen=True)
class Ranking:
    """How one model ranks pixels: a name, the attribution function ``attribute(x, y) ->
    attribution``, the modules whose code it depends on, and the class it explains ("true",
    "predicted", or "none" for a class-agnostic map); name and class key the retrainings."""

    name: str
    attribute: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    code: tuple[str, ...] = ()
    target: str = "none"


def saliency_ranking(model: nn.Module, target: str) -> Ranking:
    """The model's vanilla saliency of the true class (``target`` "true") or of its own prediction
    ("predicted")."""
    if target not in ("true", "predicted"):
        raise ValueError(f"target must be 'true' or 'predicted', got {target!r}")

    def attribute(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # predict runs in inference mode: clone its labels so that autograd may index with them
        return explain.explain(model, x, y if target == "true" else models.predict(model, x).clone(), "saliency")

    return Ranking("saliency", attribute, ("robinterp.explain",), target)


def ranked(split: data.Split, ranking: Ranking | None, seed: int, stream: str, batch_size: int = 512) -> torch.Tensor:
    """The pixel order of every image of ``split``: by the ranking's attribution, or (None) the
    random control's, drawn from ``seed`` and ``stream``."""
    if ranking is None:
        return random_order(split.images.shape, seed, stream)
    return torch.cat(
        [
            order(ranking.attribute(split.images[i : i + batch_size], split.labels[i : i + batch_size]))
            for i in range(0, len(split), batch_size)
        ]
    )


def retrained(
    source: str,
    ranking: Ranking | None,
    fraction: float,
    retrain: train.TrainSpec,
    train_split: data.Split,
    train_order: Callable[[], torch.Tensor],
    fill: torch.Tensor,
    *,
    content: str = "image",
    name: str | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """A fresh model trained by ``retrain`` on ``train_split`` with the top ``fraction`` of each
    image removed in ``train_order()`` (called only when the model is not cached), or on the
    removal's mask alone (``content`` "mask"), cached by the ``source`` model's key, the ranking,
    the fraction, the content and the spec; ``name`` (the source's label) is for the progress
    line only."""

    def build() -> nn.Module:
        torch.manual_seed(retrain.seed)
        return train.build_model(retrain)

    def train_it(model: nn.Module) -> dict[str, Any]:
        images = modified(train_split.images, train_order(), fraction, fill, content)
        history = train.fit(
            model,
            data.Split(images, train_split.labels),
            retrain,
            desc=f"ROAR {fraction:.0%} by {ranking.name if ranking else RANDOM} of {name or source}"
            + (" (mask only)" if content == "mask" else ""),
        )
        return {"history": history.to_dict("records")}

    key = {
        "roar": {
            "source": source,
            "ranking": ranking.name if ranking else RANDOM,
            "target": ranking.target if ranking else "none",
            "fraction": fraction,
            "content": content,
        },
        "retrain": dataclasses.asdict(retrain),
    }
    code = (__name__, *train.model_code(retrain), *(ranking.code if ranking else ()))
    return cache.cached_model(key, build, train_it, code=code)
