"""SGT, SGA, ASGT: masking, the KL term, the adversarial sample's ball, batching, gradients."""

from __future__ import annotations

import pytest
import torch

from robinterp import RobinterpError
from robinterp.methods import get_method
from robinterp.methods import saliency_guided as sg


def test_masking_replaces_exactly_the_k_lowest_features_and_nothing_else():
    x = torch.rand(3, 1, 4, 5)
    saliency = torch.randn(3, 1, 4, 5)
    masked, mask = sg.mask_lowest(x, saliency, 0.3, generator=torch.Generator().manual_seed(0))
    n = int(0.3 * 20)
    for i in range(3):
        lowest = set(saliency[i].flatten().argsort()[:n].tolist())
        assert set(mask[i].flatten().nonzero().flatten().tolist()) == lowest
    assert torch.equal(masked[~mask], x[~mask])
    assert (masked[mask] != x[mask]).all()


def test_magnitude_ranking_masks_the_smallest_absolute_values():
    x = torch.rand(1, 1, 2, 2)
    saliency = torch.tensor([[[[-5.0, 0.1], [2.0, -0.2]]]])
    _, signed = sg.mask_lowest(x, saliency, 0.5)
    _, magnitude = sg.mask_lowest(x, saliency, 0.5, ranking="magnitude")
    assert signed.flatten().tolist() == [True, False, False, True]
    assert magnitude.flatten().tolist() == [False, True, False, True]


def test_position_masking_masks_every_channel_of_a_position():
    x = torch.rand(2, 3, 4, 4)
    _, mask = sg.mask_lowest(x, torch.randn(2, 3, 4, 4), 0.25, unit="positions")
    assert (mask.all(1) == mask.any(1)).all() and int(mask[0, 0].sum()) == 4


def test_masked_values_stay_in_each_images_own_range_per_channel():
    x = torch.rand(4, 3, 8, 8) * torch.tensor([0.2, 0.5, 1.0]).view(1, 3, 1, 1)
    masked, _ = sg.mask_lowest(x, torch.randn_like(x), 0.6)
    lo, hi = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
    assert ((masked >= lo) & (masked <= hi)).all()


def test_batched_masking_equals_per_sample_masking():
    x, s = torch.rand(5, 1, 6, 6), torch.randn(5, 1, 6, 6)
    _, batched = sg.mask_lowest(x, s, 0.4)
    single = torch.cat([sg.mask_lowest(x[i : i + 1], s[i : i + 1], 0.4)[1] for i in range(5)])
    assert torch.equal(batched, single)


@pytest.mark.parametrize("k", [0.0, 1.0, -0.1])
def test_k_outside_the_open_unit_interval_is_refused(k):
    with pytest.raises(RobinterpError, match=r"k must be in \(0, 1\)"):
        sg.mask_lowest(torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2), k)


@pytest.mark.parametrize("direction", sg.KL_DIRECTIONS)
def test_kl_term_is_zero_for_equal_inputs_and_positive_otherwise(direction):
    logits = torch.randn(6, 10)
    assert float(sg.kl_term(logits, logits.clone(), direction)) == pytest.approx(0.0, abs=1e-7)
    assert float(sg.kl_term(logits, torch.randn(6, 10), direction)) > 0


def test_kl_directions_match_their_definitions():
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    p, q = a.softmax(1), b.softmax(1)
    kl_pq = (p * (p.log() - q.log())).sum(1).mean()
    assert torch.allclose(sg.kl_term(a, b, "reference_to_masked"), kl_pq)
    kl_qp = (q * (q.log() - p.log())).sum(1).mean()
    assert torch.allclose(sg.kl_term(a, b, "masked_to_reference"), kl_qp)


def test_logit_saliency_is_the_signed_gradient_of_the_target_logit(tiny_cnn):
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([1, 2, 3])
    xr = x.clone().requires_grad_(True)
    tiny_cnn.eval()
    tiny_cnn(xr).gather(1, y[:, None]).sum().backward()
    assert torch.allclose(sg.logit_saliency(tiny_cnn, x, y), xr.grad, atol=1e-6)


@pytest.mark.parametrize("steps", [1, 3])
def test_asgt_adversarial_sample_stays_in_its_epsilon_ball(tiny_cnn, steps):
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    adversarial, masked = sg.asgt_samples(
        tiny_cnn, x, y, k=0.3, eps=0.1, steps=steps, ranking="signed", unit="elements"
    )
    assert float((adversarial - x).abs().max()) <= 0.1 + 1e-6
    changed = (masked != adversarial).flatten(1).sum(1)
    assert (changed <= int(0.3 * 784)).all() and (changed > 0).all()


@pytest.mark.parametrize("method", ["sgt", "sga", "asgt"])
def test_each_loss_backpropagates_to_the_weights_and_is_registered(blobs, method):
    torch.manual_seed(0)
    from robinterp import models

    model = models.build("small_cnn", "mnist", num_classes=10, shape=(1, 28, 28), width=4)
    loss, logits = get_method(method)(model, blobs.images[:8], blobs.labels[:8], progress=0.0)
    loss.backward()
    assert torch.isfinite(loss) and logits.shape == (8, 10)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
