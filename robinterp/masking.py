"""Masking the lowest-ranked features of an image with noise: the operation SGT trains with and
the removal test (``robinterp.metrics``) measures with. A module of its own, below both, so that
an edit to the saliency-guided methods recomputes neither the other chapters' removal tables nor
anything else that removes pixels."""

from __future__ import annotations

import torch

from robinterp import RobinterpError
from robinterp.settings.choices import MASK_UNITS, RANKINGS


def mask_lowest(
    x: torch.Tensor,
    saliency: torch.Tensor,
    k: float,
    *,
    ranking: str = "signed",
    unit: str = "elements",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace the ``k`` fraction of lowest-ranked features by noise; return (masked, mask).

    ``unit="elements"`` ranks every C*H*W value; ``"positions"`` ranks H*W pixel
    positions by the channel-mean saliency and masks all channels of a position.
    Noise is uniform within each image's own [min, max], per channel. Ties are
    broken by position (stable sort), so the result is deterministic.
    """
    if not 0 < k < 1:
        raise RobinterpError(f"mask fraction k must be in (0, 1), got {k!r}")
    if ranking not in RANKINGS or unit not in MASK_UNITS:
        raise RobinterpError(
            f"ranking must be one of {RANKINGS} and unit one of {MASK_UNITS}, got {ranking!r}, {unit!r}"
        )
    n, c, h, w = x.shape
    score = saliency.abs() if ranking == "magnitude" else saliency
    score = score.mean(1).flatten(1) if unit == "positions" else score.flatten(1)
    n_masked = int(k * score.shape[1])
    lowest = torch.argsort(score, dim=1, stable=True)[:, :n_masked]
    mask = torch.zeros_like(score, dtype=torch.bool).scatter_(1, lowest, True)
    mask = mask.view(n, 1, h, w).expand(n, c, h, w) if unit == "positions" else mask.view(n, c, h, w)
    low = x.amin(dim=(2, 3), keepdim=True)
    high = x.amax(dim=(2, 3), keepdim=True)
    noise = low + (high - low) * torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return torch.where(mask, noise, x).detach(), mask
