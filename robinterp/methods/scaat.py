"""SCAAT, saliency-constrained adaptive adversarial training (Xu et al. 2023): a reconstruction.

Only the abstract is public and no code was released. It says: adversarial samples
are built "under the guidance of the saliency map", training on them "eliminates most
noise and makes saliency maps sparser and more faithful", and accuracy is kept. Every
mechanism below is therefore the book's design, each a parameter:

- the saliency s of the true-label logit (|gradient|, the largest over channels at
  each pixel) is normalised per sample to [0, 1] and recomputed on every batch at the
  current weights (the model's own saliency guides its adversary as it trains);
- each pixel gets its own Linf budget eps_i = eps (1 - s_i)^gamma: large where the
  saliency is low, small where it is high. PGD inside that budget perturbs the pixels
  the model should not rely on, so training penalises gradient mass there (the
  noise), while the salient evidence is left almost intact. gamma = 0 ignores the
  saliency (with clean weight 0 it is exactly PGD training);
- "adaptive" (optional): each sample's budget is scaled by (1 + m) / 2, with m its
  softmax margin p_y - max_{j != y} p_j, so samples the model gets wrong are attacked
  less (in the spirit of instance-adaptive adversarial training);
- loss w CE(x) + (1 - w) CE(x_adv), with w the clean weight (0: adversarial samples only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from captum.attr import Saliency
from torch import nn

from robinterp.attacks.pgd import budget_pgd
from robinterp.methods import LossOutput, Method
from robinterp.methods._modes import examples_model
from robinterp.methods._schedules import ramped, warmup_dependence
from robinterp.models import eval_mode
from robinterp.settings.methods import SCAATParams


def normalised_saliency(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|gradient of the true-label logit|, the largest over channels, scaled per sample to [0, 1];
    shape (N, 1, H, W). A sample whose gradient is constant gets 0 everywhere."""
    with eval_mode(model):
        grad = Saliency(model).attribute(x.detach().clone().requires_grad_(True), target=y, abs=True).detach()
    pixel = grad.amax(dim=1, keepdim=True)
    low = pixel.amin(dim=(2, 3), keepdim=True)
    span = pixel.amax(dim=(2, 3), keepdim=True) - low
    return torch.where(span > 0, (pixel - low) / span.clamp_min(1e-12), torch.zeros_like(pixel))


def margin_scale(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(1 + p_y - max_{j != y} p_j) / 2 per sample, in [0, 1], shaped to broadcast over images."""
    with eval_mode(model), torch.no_grad():
        probs = F.softmax(model(x), dim=1)
    true = probs.gather(1, y[:, None])
    other = probs.scatter(1, y[:, None], float("-inf")).amax(dim=1, keepdim=True)
    return ((1 + true - other) / 2).view(-1, 1, 1, 1)


def budget(model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: SCAATParams, eps: float) -> torch.Tensor:
    """The per-pixel Linf radii eps (1 - s)^gamma (times the margin scale when adaptive)."""
    radii = torch.full_like(x[:, :1], eps)
    if params.gamma > 0:
        radii = eps * (1 - normalised_saliency(model, x, y)) ** params.gamma
    if params.adaptive:
        radii = radii * margin_scale(model, x, y)
    return radii.expand_as(x)


def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: SCAATParams, *, progress: float) -> LossOutput:
    """w CE(x) + (1 - w) CE(x_adv), x_adv from PGD inside the saliency-shaped budget; the logits
    returned are the adversarial ones (as PGD training's)."""
    eps_now = ramped(params.eps, progress, params.eps_warmup)
    steps = params.steps
    alpha = 2.5 * eps_now / steps if params.step_size is None else params.step_size * eps_now / params.eps
    attacked = examples_model(model, params.example_mode)
    x_adv = (
        x.detach().clone()
        if eps_now == 0
        else budget_pgd(attacked, x, y, budget=budget(attacked, x, y, params, eps_now), steps=steps, step_size=alpha)
    )
    logits_adv = model(x_adv)
    total = (1 - params.clean_weight) * F.cross_entropy(logits_adv, y)
    if params.clean_weight > 0:
        total = total + params.clean_weight * F.cross_entropy(model(x), y)
    return total, logits_adv


METHOD = Method(
    "scaat",
    SCAATParams,
    loss,
    "saliency-constrained adaptive adversarial training (Xu et al. 2023; reconstructed from the abstract)",
    budget_dependence=warmup_dependence,
)
