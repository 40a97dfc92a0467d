"""Jacobian regularization (Hoffman et al. 2019): cross-entropy plus lambda/2 ||J||_F^2 of the
logits with respect to the input, estimated with random projections.

Not the input-gradient regularization of Ross and Doshi-Velez (2018), which
penalises the gradient of the loss, one vector per input; this penalises the whole
Jacobian of the logits, C vectors per input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robinterp import RobinterpError
from robinterp.methods import LossOutput, Method, budget_free
from robinterp.settings.methods import JacobianRegParams


def jacobian_frobenius_sq(
    model: nn.Module,
    x: torch.Tensor,
    n_proj: int = 1,
    generator: torch.Generator | None = None,
    create_graph: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Estimate of ||J||_F^2 (logits w.r.t. input), averaged over the batch, and the logits.

    Hoffman et al. 2019: for v uniform on the unit sphere of the C logits,
    E[C ||v^T J||^2] = ||J||_F^2; ``n_proj`` projections, one backward pass each.
    """
    if not (isinstance(n_proj, int) and n_proj >= 1):
        raise RobinterpError(f"n_proj must be an integer >= 1, got {n_proj!r}")
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        batch, classes = logits.shape
        total = logits.new_zeros(())
        for _ in range(n_proj):  # a handful of projections; each is one batched backward pass
            v = torch.randn(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
            v = v / v.norm(dim=1, keepdim=True)
            (jv,) = torch.autograd.grad(logits, x, grad_outputs=v, create_graph=create_graph)
            total = total + classes * jv.pow(2).sum() / (n_proj * batch)
    return total, logits


def jacobian_reg(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: JacobianRegParams, *, progress: float
) -> LossOutput:
    """CE + lam/2 ||J||_F^2, random projections."""
    frobenius_sq, logits = jacobian_frobenius_sq(model, x, params.n_proj)
    return F.cross_entropy(logits, y) + 0.5 * params.lam * frobenius_sq, logits


METHOD = Method(
    "jacobian_reg",
    JacobianRegParams,
    jacobian_reg,
    "Jacobian regularization of the logits (Hoffman et al. 2019)",
    budget_dependence=budget_free,
)
