"""The CUDA paths, where torch sees a GPU: skipped on this project's machine, which has none; run
on a GPU machine with ``pytest tests/test_cuda.py``. Each test computes with a model on the GPU
and the chapters' CPU tensors, as a chapter with ``device: auto`` does there, and checks the
result against the same computation on the CPU: results come back on the CPU, and agree up to
the order in which the two devices sum (cuDNN picks other convolution algorithms)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from robinterp import explain, robustness, train
from robinterp.attacks import AttackSpec
from robinterp.settings.metrics import SEVEN
from tests.test_explanation_quality import IG_OPTIONS, assert_equal_scores, both_implementations
from tests.test_train import build, spec

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no GPU")


@pytest.fixture
def fitted_pair(blobs):
    """The same trained model twice: on the CPU and on the GPU."""
    model = build()
    train.fit(model, blobs, spec())
    return model.eval(), copy.deepcopy(model).to("cuda").eval()


@pytest.mark.parametrize(
    "changes",
    [{}, {"precision": "bfloat16"}, {"torch_compile": True}],
    ids=["float32", "bfloat16", "compiled"],
)
def test_a_model_trains_on_the_gpu_and_stays_there(blobs, changes):
    model = build()
    history = train.fit(model, blobs, spec(device="cuda", **changes))
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert history.loss.iloc[-1] < history.loss.iloc[0]
    assert train.accuracy(model, blobs) > 0.9


def test_adversarial_training_on_the_gpu_learns_as_on_the_cpu(blobs):
    robust = spec(method="pgd_at", method_params=(("eps", 0.1), ("steps", 2)))
    on_cpu, on_gpu = build(), build()
    train.fit(on_cpu, blobs, robust)
    train.fit(on_gpu, blobs, dataclasses.replace(robust, device="cuda"))
    assert abs(train.accuracy(on_gpu, blobs) - train.accuracy(on_cpu, blobs)) <= 0.05


@pytest.mark.parametrize("name", ["saliency", "integrated_gradients"])
def test_deterministic_explainers_give_the_cpus_maps_back_on_the_cpu(fitted_pair, blobs, name):
    on_cpu, on_gpu = fitted_pair
    x, y = blobs.images[:16], blobs.labels[:16]
    explainer = explain.get_explainer(name)
    expected = explainer(on_cpu, x.clone().requires_grad_(True), y)
    got = explainer(on_gpu, x.clone().requires_grad_(True), y)
    assert got.device.type == "cpu"
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("name", ["gradient_shap", "smoothgrad", "random"])
def test_noisy_explainers_run_on_the_gpu_and_repeat_under_one_seed(fitted_pair, blobs, name):
    """Their noise is drawn on the model's device from torch's generators (torch.manual_seed seeds
    CUDA's too), and captum's GradientShap draws its baseline choices and interpolation points
    from numpy's: seeded, they give other maps than on the CPU, and the same maps on every run."""
    _, on_gpu = fitted_pair
    x, y = blobs.images[:8], blobs.labels[:8]
    explainer = explain.get_explainer(name)

    def seeded() -> torch.Tensor:
        torch.manual_seed(0)
        np.random.seed(0)
        return explainer(on_gpu, x.clone(), y)

    first, again = seeded(), seeded()
    assert first.device.type == "cpu" and first.shape == x.shape
    assert torch.equal(first, again)


def test_robust_accuracy_of_a_gpu_model_agrees_with_the_cpu(fitted_pair, blobs):
    """Without random starts the attacks are the same ascent on both devices; a gradient sign
    that round-off flips moves a pixel by one step, so an image or two may change."""
    on_cpu, on_gpu = fitted_pair
    x, y = blobs.images, blobs.labels
    bound = (AttackSpec.of("fgsm"), AttackSpec.of("pgd", steps=5, random_start=False), AttackSpec.of("mifgsm", steps=5))
    for early_stop in (True, False):
        expected = robustness.robust_accuracy(
            on_cpu, x, y, attacks=bound, epsilons=(0.05, 0.1, 0.2), early_stop=early_stop
        )
        got = robustness.robust_accuracy(on_gpu, x, y, attacks=bound, epsilons=(0.05, 0.1, 0.2), early_stop=early_stop)
        assert (got.correct - expected.correct).abs().max() <= 2, (early_stop, got, expected)


def test_random_starts_on_the_gpu_repeat_themselves(fitted_pair, blobs):
    _, on_gpu = fitted_pair
    x, y = blobs.images[:64], blobs.labels[:64]
    pgd = AttackSpec.of("pgd", steps=3)
    first, again = (robustness.correct_under_attack(on_gpu, x, y, pgd, (0.1, 0.2), seed=3) for _ in range(2))
    assert all(first[eps].device.type == "cpu" and torch.equal(first[eps], again[eps]) for eps in first)


@pytest.mark.parametrize("metric", list(SEVEN))
def test_each_metric_on_the_gpu_equals_quantus_there(fitted_pair, blobs, metric):
    """Quantus is handed the model's device, so its own arrays reach the GPU model."""
    _, on_gpu = fitted_pair
    quantus_table, robinterp_table = both_implementations(
        on_gpu, blobs.images[:6], blobs.labels[:6], (metric,), explainer_options=IG_OPTIONS
    )
    assert np.isfinite(quantus_table.score).all()
    assert_equal_scores(quantus_table, robinterp_table)
