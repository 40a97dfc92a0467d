"""Input-gradient regularization (Ross and Doshi-Velez 2018): cross-entropy plus lambda times
the squared norm of the input gradient of the cross-entropy, trained by double backpropagation.

Not the Jacobian regularization of Hoffman et al. (``robinterp.methods.jacobian_reg``): that
penalises every logit's gradient (the Frobenius norm of the C x D Jacobian, estimated by random
projections); this penalises one vector per input, the gradient of the loss itself, which is
exact at the cost of one extra backward pass. They share no code because they share no maths
beyond autograd.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robinterp.methods import LossOutput, Method, budget_free
from robinterp.settings.methods import InputGradientRegParams


def penalised(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, lam: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, penalty, logits): loss = mean CE + lam * mean_n ||d CE_n / d x_n||^2, with a graph
    through the gradient (double backprop), so that training lowers the penalty itself."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        per_sample = F.cross_entropy(logits, y, reduction="none")
        (grad,) = torch.autograd.grad(per_sample.sum(), x, create_graph=True)
        penalty = grad.flatten(1).pow(2).sum(1).mean()
    return per_sample.mean() + lam * penalty, penalty, logits


def loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: InputGradientRegParams, *, progress: float
) -> LossOutput:
    """CE + lam ||grad_x CE||^2 on clean inputs."""
    total, _, logits = penalised(model, x, y, params.lam)
    return total, logits


METHOD = Method(
    "input_grad_reg",
    InputGradientRegParams,
    loss,
    "input-gradient regularization by double backprop (Ross and Doshi-Velez 2018)",
    budget_dependence=budget_free,
)
