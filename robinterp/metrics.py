"""Scalar measures of attributions, vectorized over the batch."""

from __future__ import annotations

import torch
from torch import nn

from robinterp.models import eval_mode


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


def cosine_alignment(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Scale-free variant: |cos(x, g)|, in [0, 1]."""
    return alignment(model, x, target) / x.flatten(1).norm(dim=1).clamp_min(1e-12)


def correct_after_removal(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                          attribution: torch.Tensor, fractions: tuple[float, ...], *,
                          random_ranking: bool = False, seed: int = 0) -> torch.Tensor:
    """Per fraction and image, whether the prediction is still right after replacing the top
    ``d`` fraction of features by |attribution| with noise: bool, shape (len(fractions), N).

    The SGT paper's faithfulness test (no retraining): removed features get
    uniform noise in each image's own range, as SGT's masking does. A faithful
    attribution makes accuracy fall faster than the ``random_ranking`` control.
    """
    from robinterp.methods.saliency_guided import mask_lowest
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


def accuracy_after_removal(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                           attribution: torch.Tensor, fractions: tuple[float, ...], *,
                           random_ranking: bool = False, seed: int = 0) -> list[float]:
    """Accuracy after each removal of ``correct_after_removal``, one number per fraction."""
    correct = correct_after_removal(model, x, y, attribution, fractions, random_ranking=random_ranking,
                                    seed=seed)
    return [float(row.float().mean()) for row in correct]


def background_mass(attribution: torch.Tensor, x: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """Per image, the share of |attribution| that falls on background pixels.

    A pixel is background when its brightest channel is at most ``threshold`` (MNIST and
    Fashion-MNIST draw their objects on black). Attribution there is noise by construction:
    the pixel carries no evidence, so a cleaner map puts less mass on it. An all-zero map
    has no mass to place and scores 0.
    """
    mass = attribution.abs().sum(1)  # channels summed, (N, H, W)
    background = x.amax(1) <= threshold
    total = mass.flatten(1).sum(1)
    return (mass * background).flatten(1).sum(1) / total.clamp_min(1e-12)
