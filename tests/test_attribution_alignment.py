"""The attribution-alignment method (a reconstruction): its map, its loss, its teacher."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robinterp import RobinterpError, train
from robinterp.methods import attribution_alignment as aa


def test_the_map_is_the_rectified_channel_mean_of_a_convolution_upsampled_to_the_input(tiny_cnn):
    x = torch.rand(3, 1, 28, 28)
    captured = []
    last = [m for m in tiny_cnn.modules() if isinstance(m, nn.Conv2d)][-1]
    handle = last.register_forward_hook(lambda _m, _i, out: captured.append(out))
    expected_logits = tiny_cnn(x)
    handle.remove()
    logits, heat = aa.forward_with_map(tiny_cnn, x, -1)
    assert torch.allclose(logits, expected_logits)
    assert heat.shape == (3, 1, 28, 28)
    coarse = torch.relu(captured[0]).mean(1, keepdim=True)  # 14 x 14 before pooling
    upsampled = torch.nn.functional.interpolate(coarse, size=(28, 28), mode="bilinear", align_corners=False)
    assert torch.allclose(heat, upsampled, atol=1e-6)
    first = aa.forward_with_map(tiny_cnn, x, 0)[1]
    assert not torch.allclose(first, heat)
    with pytest.raises(RobinterpError, match="2 convolutions"):
        aa.forward_with_map(tiny_cnn, x, 2)


def test_explanation_is_shaped_like_the_input_and_costs_no_gradient(tiny_cnn):
    x = torch.rand(2, 1, 28, 28)
    tiny_cnn.train()
    maps = aa.explanation(tiny_cnn, x, layer=-1)
    assert maps.shape == x.shape and not maps.requires_grad and tiny_cnn.training  # mode restored


def test_misalignment_is_zero_for_maps_equal_up_to_scale_and_positive_otherwise():
    a = torch.rand(4, 1, 5, 5)
    assert float(aa.misalignment(a, 3 * a, "cosine")) == pytest.approx(0.0, abs=1e-6)
    assert float(aa.misalignment(a, 3 * a, "mse")) == pytest.approx(0.0, abs=1e-6)
    b = torch.rand(4, 1, 5, 5)
    assert float(aa.misalignment(a, b, "cosine")) > 0 and float(aa.misalignment(a, b, "mse")) > 0


def test_training_on_the_loss_aligns_the_map_with_the_teachers_saliency(tiny_cnn, fitted_tiny_cnn, blobs):
    torch.manual_seed(1)
    from robinterp import models

    student = models.build("small_cnn", "mnist", num_classes=10, shape=(1, 28, 28), width=4)
    teacher = fitted_tiny_cnn
    params = aa.AttributionAlignmentParams(weight=5.0)
    x, y = blobs.images[:100], blobs.labels[:100]

    def gap():
        with torch.no_grad():
            return float(
                aa.misalignment(aa.forward_with_map(student, x, -1)[1], aa.teacher_saliency(teacher, x, y), "cosine")
            )

    before, weights = gap(), [w.clone() for w in teacher.parameters()]
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    for _ in range(30):
        loss, _ = aa.loss(student, x, y, params, progress=0.0, teacher=teacher)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert gap() < 0.7 * before
    assert all(torch.equal(w, p) for w, p in zip(weights, teacher.parameters()))  # the teacher is not trained


def test_the_teacher_is_the_students_spec_trained_by_pgd_in_l2():
    student = train.TrainSpec(
        method="attribution_alignment",
        epochs=2.0,
        seed=3,
        method_params=(("teacher_eps", 1.5), ("teacher_steps", 4), ("teacher_eps_warmup", 0.0)),
    )
    teacher = aa.teacher_spec(student)
    assert (teacher.method, teacher.epochs, teacher.seed) == ("pgd_at", 2.0, 3)
    assert dict(teacher.method_params) == {
        "eps": 1.5,
        "steps": 4,
        "norm": "l2",
        "eps_warmup": 0.0,
        "step_size": None,
        "example_mode": "eval",
    }
    # the same spec as a chapter's PGD-L2 entry written by hand: one cached model for both
    by_hand = train.TrainSpec(
        method="pgd_at", epochs=2.0, seed=3, method_params=(("norm", "l2"), ("eps", 1.5), ("steps", 4))
    )
    assert teacher == by_hand
