"""Saliency-guided training methods: SGT (Ismail et al. 2021), SGA (Li et al. 2022),
ASGT (Guesmi et al. 2024); one family module, since they share the masking maths.

Defaults follow the official SGT code where the papers are silent (see
``../shared/papers/METHOD_NOTES.md``): the signed gradient of the true-label
logit is ranked, masked values are uniform in each image's own range, the masked
input is detached, and the KL term compares p(x) to p(masked) with batch-mean
reduction. Every such choice is a parameter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from captum.attr import Saliency
from torch import nn

from robinterp import RobinterpError
from robinterp.attacks.fgsm import fgsm
from robinterp.attacks.pgd import pgd
from robinterp.masking import mask_lowest
from robinterp.methods import LossOutput, Method, budget_free
from robinterp.methods._modes import examples_model
from robinterp.models import eval_mode
from robinterp.settings.choices import KL_DIRECTIONS
from robinterp.settings.methods import ASGTParams, SGAParams, SGTParams


def logit_saliency(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Signed gradient of the target logit w.r.t. the input (captum Saliency, abs=False), eval mode."""
    with eval_mode(model):
        return Saliency(model).attribute(x.detach().clone().requires_grad_(True), target=target, abs=False).detach()


def kl_term(logits_reference: torch.Tensor, logits_masked: torch.Tensor, direction: str) -> torch.Tensor:
    """KL(p_ref || p_masked) (official SGT code) or KL(p_masked || p_ref) (Guesmi's Algorithm 1, eq. 5)."""
    if direction not in KL_DIRECTIONS:
        raise RobinterpError(f"kl_direction must be one of {KL_DIRECTIONS}, got {direction!r}")
    log_ref = F.log_softmax(logits_reference, dim=1)
    log_masked = F.log_softmax(logits_masked, dim=1)
    if direction == "reference_to_masked":
        return F.kl_div(log_masked, log_ref, reduction="batchmean", log_target=True)
    return F.kl_div(log_ref, log_masked, reduction="batchmean", log_target=True)


def _attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int) -> torch.Tensor:
    """FGSM for one step, else PGD (Linf, random start) with ``steps`` steps."""
    return fgsm(model, x, y, eps=eps) if steps == 1 else pgd(model, x, y, eps=eps, steps=steps)


def sgt(model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: SGTParams, *, progress: float) -> LossOutput:
    """Saliency-guided training: CE(f(x), y) + lam KL(p(x), p(mask(x))), bottom-k by saliency of y."""
    explained = examples_model(model, params.example_mode)
    masked, _ = mask_lowest(x, logit_saliency(explained, x, y), params.k, ranking=params.ranking, unit=params.unit)
    logits = model(x)
    total = F.cross_entropy(logits, y) + params.lam * kl_term(logits, model(masked), params.kl_direction)
    return total, logits


def sga(model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: SGAParams, *, progress: float) -> LossOutput:
    """Saliency-guided adversarial training (Li et al.): mask first, then attack the masked input.

    CE(f(x), y) + lam KL(p(x), p(attack(mask(x)))); the attack is FGSM for
    ``steps=1``, else PGD (Linf) with ``steps`` steps.
    """
    explained = examples_model(model, params.example_mode)
    masked, _ = mask_lowest(x, logit_saliency(explained, x, y), params.k, ranking=params.ranking, unit=params.unit)
    adversarial = _attack(explained, masked, y, params.eps, params.steps)
    logits = model(x)
    total = F.cross_entropy(logits, y) + params.lam * kl_term(logits, model(adversarial), params.kl_direction)
    return total, logits


def asgt_samples(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, k: float, eps: float, steps: int, ranking: str, unit: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """ASGT's adversarial sample x' and its masked version x~'."""
    adversarial = _attack(model, x, y, eps, steps)
    masked, _ = mask_lowest(adversarial, logit_saliency(model, adversarial, y), k, ranking=ranking, unit=unit)
    return adversarial, masked


def asgt(model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: ASGTParams, *, progress: float) -> LossOutput:
    """Adversarial saliency-guided training (Guesmi et al., eq. 5): attack first, then mask.

    x' = attack(x); x~' = bottom-k mask of x' by the saliency of y at x';
    loss CE(f(x), y) + CE(f(x'), y) + lam KL(f(x~') || f(x)). The attack is FGSM
    for ``steps=1``, else PGD (Linf) with ``steps`` steps, both inside the eps-ball
    around the clean x.
    """
    adversarial, masked = asgt_samples(
        examples_model(model, params.example_mode),
        x,
        y,
        k=params.k,
        eps=params.eps,
        steps=params.steps,
        ranking=params.ranking,
        unit=params.unit,
    )
    logits = model(x)
    total = (
        F.cross_entropy(logits, y)
        + F.cross_entropy(model(adversarial), y)
        + params.lam * kl_term(logits, model(masked), params.kl_direction)
    )
    return total, logits


SGT = Method("sgt", SGTParams, sgt, "saliency-guided training (Ismail et al. 2021)", budget_dependence=budget_free)
SGA = Method(
    "sga",
    SGAParams,
    sga,
    "saliency-guided adversarial training, mask then attack (Li et al. 2022)",
    budget_dependence=budget_free,
)
ASGT = Method(
    "asgt",
    ASGTParams,
    asgt,
    "adversarial saliency-guided training, attack then mask (Guesmi et al. 2024)",
    budget_dependence=budget_free,
)
