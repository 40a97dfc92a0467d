"""ROAD: the imputation on hand cases, and the curve against Quantus on 1-channel images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robinterp import metrics


def test_a_removed_inner_pixel_becomes_the_weighted_mean_of_its_neighbours():
    image = np.arange(9, dtype=np.float64).reshape(1, 3, 3)
    out = metrics.noisy_linear_impute(image, np.array([4]), noise=0.0, rng=np.random.RandomState(0))
    direct, diagonal = 1 + 3 + 5 + 7, 0 + 2 + 6 + 8
    assert out[0, 1, 1] == pytest.approx(direct / 6 + diagonal / 12)
    assert np.array_equal(np.delete(out.ravel(), 4), np.delete(image.ravel(), 4)), "only the removed pixel moves"


def test_a_corner_pixel_counts_only_the_neighbours_inside_the_frame():
    image = np.array([[[0.0, 2.0], [4.0, 8.0]]])
    out = metrics.noisy_linear_impute(image, np.array([0]), noise=0.0, rng=np.random.RandomState(0))
    assert out[0, 0, 0] == pytest.approx((2.0 / 6 + 4.0 / 6 + 8.0 / 12) / (1 / 6 + 1 / 6 + 1 / 12))


def test_removed_neighbours_are_solved_together_and_every_channel_is_imputed():
    image = np.stack([np.full((4, 4), 1.0), np.full((4, 4), 3.0)])  # constant channels
    out = metrics.noisy_linear_impute(image, np.array([5, 6, 9, 10]), noise=0.0, rng=np.random.RandomState(0))
    assert np.allclose(out[0], 1.0) and np.allclose(out[1], 3.0), "a constant image imputes to itself"
    noisy = metrics.noisy_linear_impute(image, np.array([5]), noise=0.1, rng=np.random.RandomState(0))
    assert noisy[0, 1, 1] != 1.0 and abs(noisy[0, 1, 1] - 1.0) < 0.5


def test_road_orders_remove_the_most_or_the_least_relevant_pixels_first(tiny_cnn):
    x, y = torch.rand(4, 1, 28, 28), torch.arange(4)
    attribution = torch.rand_like(x)
    correct = metrics.road(tiny_cnn, x, y, attribution, (0, 10, 50), seed=1)
    assert correct.shape == (3, 4) and correct.dtype == torch.bool
    assert torch.equal(correct[0], tiny_cnn(x).argmax(1) == y), "removing nothing keeps every prediction"
    with pytest.raises(ValueError, match="order must be one of"):
        metrics.road(tiny_cnn, x, y, attribution, (10,), order="random")


def test_road_equals_quantus_on_one_channel_images_and_one_batch(blobs, fitted_tiny_cnn):
    import quantus

    tiny_cnn = fitted_tiny_cnn
    x, y = blobs.images[:16], blobs.labels[:16]
    attribution = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    percentages = [5, 25, 50, 75, 95]
    np.random.seed(7)
    theirs = quantus.ROAD(percentages=percentages, noise=0.05, display_progressbar=False, disable_warnings=True)(
        model=tiny_cnn, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=attribution.numpy(), batch_size=16, device="cpu"
    )
    ours = metrics.road(tiny_cnn, x, y, attribution, tuple(percentages), noise=0.05, seed=7)
    assert [theirs[p] for p in percentages] == pytest.approx(ours.float().mean(1).tolist())
    assert len(set(theirs.values())) > 1, "a curve that does not move would test nothing"
