"""Scalar measures of attributions, vectorized over the batch."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from robinterp.device import on_model_device
from robinterp.models import eval_mode


@on_model_device
def alignment(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Etmann et al. (2019): |<x, g>| / ||g||, g the input gradient of the target logit.

    ``target`` defaults to the predicted class (Etmann et al.'s choice). The
    value depends on the input scale: here x is in [0, 1] pixel space.
    """
    x = x.detach().requires_grad_(True)
    with eval_mode(model), torch.enable_grad():
        logits = model(x)
        target = logits.argmax(1) if target is None else target
        (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), x)
    g, xf = grad.flatten(1), x.detach().flatten(1)
    return (xf * g).sum(1).abs() / g.norm(dim=1).clamp_min(1e-12)


@on_model_device
def cosine_alignment(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Scale-free variant: |cos(x, g)|, in [0, 1]."""
    return alignment(model, x, target) / x.flatten(1).norm(dim=1).clamp_min(1e-12)


@on_model_device
def correct_after_removal(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attribution: torch.Tensor,
    fractions: tuple[float, ...],
    *,
    random_ranking: bool = False,
    seed: int = 0,
) -> torch.Tensor:
    """Per fraction and image, whether the prediction is still right after replacing the top
    ``d`` fraction of features by |attribution| with noise: bool, shape (len(fractions), N).

    The SGT paper's faithfulness test (no retraining): removed features get
    uniform noise in each image's own range, as SGT's masking does. A faithful
    attribution makes accuracy fall faster than the ``random_ranking`` control.
    """
    from robinterp.masking import mask_lowest
    from robinterp.models import predict

    generator = torch.Generator().manual_seed(seed)
    score = -attribution.abs()  # the top features by |attribution| are the lowest here
    if random_ranking:
        score = torch.rand(attribution.shape, generator=generator)
    rows = []
    for d in fractions:
        masked = x if d == 0 else mask_lowest(x, score, d, generator=generator)[0]
        rows.append(predict(model, masked) == y)
    return torch.stack(rows)


def background_mass(attribution: torch.Tensor, x: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """Per image, the share of |attribution| that falls on background pixels.

    A pixel is background when its brightest channel is at most ``threshold`` (MNIST and
    Fashion-MNIST draw their objects on black). This is an operational proxy for noise, ours:
    a dark pixel can still be evidence (a stroke's absence tells a 3 from an 8), so the share
    measures how much of a map lies off the object, not how much of it is wrong. An all-zero
    map has no mass to place and scores 0.
    """
    mass = attribution.abs().sum(1)  # channels summed, (N, H, W)
    background = x.amax(1) <= threshold
    total = mass.flatten(1).sum(1)
    return (mass * background).flatten(1).sum(1) / total.clamp_min(1e-12)


# ROAD's neighbourhood (Rong et al. 2022): a removed pixel is the weighted mean of its eight
# neighbours, direct ones weighted 1/6 and diagonal ones 1/12, as their code and Quantus's.
ROAD_NEIGHBOURS = (
    ((1, 1), 1 / 12),
    ((0, 1), 1 / 6),
    ((-1, 1), 1 / 12),
    ((1, -1), 1 / 12),
    ((0, -1), 1 / 6),
    ((-1, -1), 1 / 12),
    ((1, 0), 1 / 6),
    ((-1, 0), 1 / 6),
)
ROAD_ORDERS = ("morf", "lerf")


def noisy_linear_impute(
    image: np.ndarray, positions: np.ndarray, noise: float, rng: np.random.RandomState
) -> np.ndarray:
    """``image`` (C, H, W) with the pixels at flat ``positions`` (of H*W, every channel) replaced
    by the solution of ROAD's linear system (each equals the weighted mean of its neighbours,
    removed neighbours included) plus Gaussian noise of sd ``noise``."""
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import spsolve

    channels, height, width = image.shape
    flat = image.reshape(channels, -1)
    k = len(positions)
    result = image.reshape(channels, -1).copy()
    if k == 0:
        return result.reshape(image.shape)
    variable = np.full(height * width, -1)
    variable[positions] = np.arange(k)
    rows, cols, values = [np.arange(k)], [np.arange(k)], []
    known_side = np.zeros((k, channels))
    weight_sum = np.ones(k)
    row, col = positions // width, positions % width
    for (d_row, d_col), weight in ROAD_NEIGHBOURS:
        r, c = row + d_row, col + d_col
        inside = (r >= 0) & (c >= 0) & (r < height) & (c < width)
        weight_sum[~inside] -= weight  # the frame's missing neighbours do not count
        ids, neighbour = np.nonzero(inside)[0], (r * width + c)[inside]
        removed = variable[neighbour] >= 0
        known_side[ids[~removed]] -= weight * flat[:, neighbour[~removed]].T
        rows.append(ids[removed])
        cols.append(variable[neighbour[removed]])
        values.append(np.full(int(removed.sum()), weight))
    values.insert(0, -weight_sum)
    system = csc_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(k, k))
    solution = np.asarray(spsolve(system, known_side)).reshape(k, channels).T
    result[:, positions] = solution + noise * rng.randn(*solution.shape)
    return result.reshape(image.shape)


@on_model_device
def road(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attribution: torch.Tensor,
    percentages: tuple[float, ...],
    *,
    order: str = "morf",
    noise: float = 0.01,
    seed: int = 0,
) -> torch.Tensor:
    """ROAD (Rong et al. 2022): per percentage p and image, is the prediction still right after
    the ``int(H*W*p/100)`` most (``"morf"``) or least (``"lerf"``) relevant pixel positions are
    replaced by noisy linear imputation? Bool, shape (len(percentages), N). No retraining.

    Pixels are ranked by the attribution summed over channels and every channel of a pixel is
    imputed: Quantus 0.6's ``ROAD`` ranks C*H*W entries but imputes through an H*W mask, so it
    fails on colour images, and it averages only its first batch; on 1-channel images and one
    batch this equals Quantus (tested). Ties are broken by position; the noise draws from
    ``seed`` in Quantus's order (percentages, then images).
    """
    from robinterp.models import predict

    if order not in ROAD_ORDERS:
        raise ValueError(f"order must be one of {ROAD_ORDERS}, got {order!r}")
    relevance = attribution.detach().sum(1).flatten(1).cpu().numpy()
    ranked = np.argsort(-relevance if order == "morf" else relevance, axis=1, kind="stable")
    images = x.detach().cpu().numpy()
    rng = np.random.RandomState(seed)
    pixels = images.shape[2] * images.shape[3]
    rows = []
    for p in percentages:
        count = int(pixels * p / 100)
        imputed = np.stack(
            [noisy_linear_impute(image, ranked[n, :count], noise, rng) for n, image in enumerate(images)]
        )
        rows.append(predict(model, torch.from_numpy(imputed).to(x.device, x.dtype)) == y)
    return torch.stack(rows)
