"""Input-gradient regularization: the penalty and its double-backprop gradient against finite
differences on a tiny model."""

from __future__ import annotations

import torch
from torch import nn

from robinterp.methods import input_grad_reg as igr


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 3)).double()


def test_the_penalty_is_the_squared_input_gradient_of_the_loss_by_finite_differences():
    model, x, y = tiny(), torch.rand(3, 1, 2, 3, dtype=torch.float64), torch.tensor([0, 2, 1])
    _, penalty, _ = igr.penalised(model, x, y, lam=1.0)
    h, squares = 1e-6, torch.zeros(3, dtype=torch.float64)
    for n in range(3):
        for d in range(6):
            step = torch.zeros_like(x)
            step.view(3, -1)[n, d] = h
            plus, minus = (nn.functional.cross_entropy(model(z), y, reduction="none")[n] for z in (x + step, x - step))
            squares[n] += ((plus - minus) / (2 * h)) ** 2
    assert torch.allclose(penalty.detach(), squares.mean(), rtol=1e-6)


def test_double_backprop_gives_the_penalty_gradient_of_finite_differences():
    model, x, y = tiny(), torch.rand(3, 1, 2, 3, dtype=torch.float64), torch.tensor([0, 2, 1])
    weight = model[1].weight
    _, penalty, _ = igr.penalised(model, x, y, lam=1.0)
    (autograd,) = torch.autograd.grad(penalty, weight)
    h, numeric = 1e-6, torch.zeros_like(weight)
    with torch.no_grad():
        for i in range(weight.shape[0]):
            for j in range(weight.shape[1]):
                weight[i, j] += h
                up = igr.penalised(model, x, y, lam=1.0)[1]
                weight[i, j] -= 2 * h
                down = igr.penalised(model, x, y, lam=1.0)[1]
                weight[i, j] += h
                numeric[i, j] = (up - down) / (2 * h)
    assert autograd.abs().sum() > 0 and torch.allclose(autograd, numeric, rtol=1e-4, atol=1e-9)


def test_the_loss_is_cross_entropy_plus_lam_times_the_penalty():
    model, x, y = tiny(), torch.rand(5, 1, 2, 3, dtype=torch.float64), torch.tensor([0, 2, 1, 1, 0])
    total, penalty, logits = igr.penalised(model, x, y, lam=0.5)
    ce = nn.functional.cross_entropy(logits, y)
    assert torch.allclose(total, ce + 0.5 * penalty) and penalty > 0
