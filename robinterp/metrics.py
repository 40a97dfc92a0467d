"""Scalar measures of attributions, vectorized over the batch."""

from __future__ import annotations

import torch
from torch import nn

from robinterp.attacks import eval_mode


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
