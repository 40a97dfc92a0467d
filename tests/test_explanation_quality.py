"""The Quantus path: every metric runs on a real model, scores are reproducible, settings are stated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robinterp import RobinterpError, explanation_quality as eq


@pytest.fixture
def model_and_images(tiny_cnn, blobs):
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(tiny_cnn.parameters(), lr=1e-2)
    for xb, yb in blobs.batches(50, shuffle=True, seed=0):  # a few steps: predictions not constant
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(tiny_cnn(xb), yb).backward()
        optimizer.step()
    return tiny_cnn, blobs.images[:6], blobs.labels[:6]


def test_every_metric_scores_every_image_reproducibly_and_leaves_the_model_mode(model_and_images):
    model, x, y = model_and_images
    model.train()
    options = {"n_steps": 8}
    first = eq.scores(model, x, y, explainer_options=options, samples=3, seed=1)
    again = eq.scores(model, x, y, explainer_options=options, samples=3, seed=1)
    assert model.training
    assert set(first.metric) == set(eq.METRICS) and (first.groupby("metric").size() == 6).all()
    assert np.isfinite(first.score).all()
    assert first.score.tolist() == again.score.tolist()
    other_seed = eq.scores(model, x, y, ("max_sensitivity",), explainer_options=options, samples=3, seed=2)
    assert other_seed.score.tolist() != first[first.metric == "max_sensitivity"].score.tolist()


def test_our_explain_func_is_robinterps_attribution_summed_over_channels(model_and_images):
    from robinterp import explain

    model, x, y = model_and_images
    ours = eq.quantus_explain_func(model.eval(), x.numpy(), y.numpy(), explainer="saliency")
    direct = explain.saliency(model, x.clone().requires_grad_(True), y).sum(1, keepdim=True)
    assert ours.shape == (6, 1, 28, 28) and np.allclose(ours, direct.numpy())


def test_sparseness_and_complexity_rank_a_peaked_map_above_a_flat_one():
    import quantus

    flat = np.full((1, 1, 28, 28), 0.5, dtype=np.float32) + np.linspace(0, 0.01, 784, dtype=np.float32).reshape(1, 1, 28, 28)
    peaked = np.zeros((1, 1, 28, 28), dtype=np.float32)
    peaked[0, 0, 14, 14] = 1.0
    x, y = np.random.rand(1, 1, 28, 28).astype(np.float32), np.array([0])
    for name in ("sparseness", "complexity"):
        spec = eq.get_metric(name)
        metric = getattr(quantus, spec.quantus_name)(disable_warnings=True, **spec.settings(3, 784, None))
        peaked_score = metric(model=None, x_batch=x, y_batch=y, a_batch=peaked.copy())[0]
        flat_score = metric(model=None, x_batch=x, y_batch=y, a_batch=flat.copy())[0]
        better_is_peaked = peaked_score > flat_score if spec.higher_is_better else peaked_score < flat_score
        assert better_is_peaked, name


def test_settings_table_and_bad_names():
    table = eq.metric_settings(samples=10, n_features=784)
    assert len(table) == 7 and set(table.better) == {"higher", "lower"}
    row = table.set_index("metric").loc["faithfulness_estimate", "changed settings"]
    assert row["features_in_step"] == 28 and 784 % row["features_in_step"] == 0
    assert eq.divisor_at_most(1024, 36) == 32
    with pytest.raises(RobinterpError, match="unknown explanation metric 'sparsity'"):
        eq.get_metric("sparsity")


def test_the_random_control_is_far_more_sensitive_than_integrated_gradients(model_and_images):
    model, x, y = model_and_images
    ig = eq.scores(model, x, y, ("max_sensitivity",), explainer_options={"n_steps": 8}, samples=3,
                   noise=0.02)
    noise = eq.scores(model, x, y, ("max_sensitivity",), explainer="random", samples=3, noise=0.02)
    assert noise.score.mean() > 2 * ig.score.mean()
    table = eq.metric_settings(3, 784, noise=0.02).set_index("metric")["changed settings"]
    assert table["max_sensitivity"]["lower_bound"] == 0.02 and table["local_lipschitz"]["perturb_std"] == 0.02
