"""Attributions (captum) and the alignment metric against direct autograd computations."""

from __future__ import annotations

import pytest
import torch

from robinterp import RobinterpError, explain, metrics


def logit_gradient(model, x, target):
    x = x.clone().requires_grad_(True)
    model.eval()
    model(x).gather(1, target[:, None]).sum().backward()
    return x.grad


def test_saliency_is_the_absolute_gradient_of_the_target_logit(tiny_cnn):
    x, t = torch.rand(6, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4, 5])
    got = explain.explain(tiny_cnn, x, t, "saliency", batch_size=4)
    assert torch.allclose(got, logit_gradient(tiny_cnn, x, t).abs(), atol=1e-6)


def test_integrated_gradients_satisfy_completeness(tiny_cnn):
    # sum of IG attributions = f(x) - f(0) for the target logit (Sundararajan et al.)
    x, t = torch.rand(3, 1, 28, 28), torch.tensor([1, 2, 3])
    attr = explain.explain(tiny_cnn, x, t, "integrated_gradients", n_steps=200)
    with torch.no_grad():
        tiny_cnn.eval()
        gap = (tiny_cnn(x) - tiny_cnn(torch.zeros_like(x))).gather(1, t[:, None]).squeeze(1)
    assert torch.allclose(attr.flatten(1).sum(1), gap, atol=2e-2 * gap.abs().max().item() + 1e-3)


@pytest.mark.parametrize("method", list(explain.EXPLAINERS))
def test_every_explainer_keeps_shape_and_model_mode(tiny_cnn, method):
    tiny_cnn.train()
    x, t = torch.rand(2, 1, 28, 28), torch.tensor([3, 4])
    assert explain.explain(tiny_cnn, x, t, method).shape == x.shape
    assert tiny_cnn.training


def test_unknown_explainer():
    with pytest.raises(RobinterpError, match="unknown attribution method 'lime'"):
        explain.get_explainer("lime")


def test_alignment_matches_its_formula(tiny_cnn):
    x = torch.rand(5, 1, 28, 28)
    tiny_cnn.eval()
    pred = tiny_cnn(x).argmax(1)
    g = logit_gradient(tiny_cnn, x, pred).flatten(1)
    expected = (x.flatten(1) * g).sum(1).abs() / g.norm(dim=1)
    assert torch.allclose(metrics.alignment(tiny_cnn, x), expected, rtol=1e-5)
    cos = metrics.cosine_alignment(tiny_cnn, x)
    assert ((0 <= cos) & (cos <= 1 + 1e-6)).all()


def test_removal_by_attribution_hurts_more_than_random_removal():
    # the model reads only the top-left 2x2 pixels; the attribution says so
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[0, [0, 1, 4, 5]] = 10.0
        model[1].weight[1, [0, 1, 4, 5]] = -10.0
        model[1].bias[:] = torch.tensor([-35.0, 35.0])  # class 0 iff the four pixels sum > 3.5
    x = torch.rand(200, 1, 4, 4) * 0.9
    x[:, :, :2, :2] = 1.0
    y = torch.zeros(200, dtype=torch.long)
    attribution = torch.zeros_like(x)
    attribution[:, :, :2, :2] = 1.0
    fractions = (0.0, 0.25)
    by_attr = metrics.correct_after_removal(model, x, y, attribution, fractions).float().mean(1).tolist()
    by_random = (
        metrics.correct_after_removal(model, x, y, attribution, fractions, random_ranking=True).float().mean(1).tolist()
    )
    assert by_attr[0] == by_random[0] == 1.0  # nothing removed: clean accuracy
    assert by_attr[1] < by_random[1]


def test_the_random_control_ignores_the_model_and_is_seeded(tiny_cnn):
    x, t = torch.rand(3, 1, 28, 28), torch.tensor([0, 1, 2])
    other = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    a = explain.random_attribution(tiny_cnn, x, t, seed=4)
    assert torch.equal(a, explain.random_attribution(other, x, t, seed=4))
    assert not torch.equal(a, explain.random_attribution(tiny_cnn, x, t, seed=5))
    assert a.shape == x.shape and 0 <= float(a.min()) and float(a.max()) <= 1


def test_alignment_on_a_linear_model_is_the_distance_to_its_decision_boundary():
    """Two logits +-w.x: the boundary is w.x = 0, and |<x, w>| / ||w|| is x's distance to it."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False))
    w = torch.tensor([3.0, 4.0, 0.0, 0.0])
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([w, -w]))
    x = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)
    distance = metrics.alignment(model, x)
    assert float(distance) == pytest.approx(7 / 5)
    # moving just past that distance along -w flips the prediction, just short of it does not
    step = (w / w.norm()).view(1, 1, 2, 2)
    assert model(x - 1.01 * distance * step).argmax(1).item() == 1
    assert model(x - 0.99 * distance * step).argmax(1).item() == 0
