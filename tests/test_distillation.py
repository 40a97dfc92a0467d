"""Defensive distillation: the soft targets, the teacher's spec, and a student trained from a
teacher that the cache trains once."""

from __future__ import annotations

import math

import pytest
import torch

from robinterp import train
from robinterp.methods import distillation


def test_soft_targets_sum_to_one_and_flatten_as_the_temperature_grows():
    logits = torch.tensor([[4.0, 1.0, -2.0], [0.5, 0.0, 3.0]])
    entropies = []
    for temperature in (1.0, 10.0, 100.0):
        targets = distillation.soft_targets(logits, temperature)
        assert torch.allclose(targets.sum(1), torch.ones(2))
        entropies.append(float(-(targets * targets.log()).sum(1).mean()))
    assert entropies == sorted(entropies) and entropies[-1] == pytest.approx(math.log(3), abs=1e-3)
    assert torch.equal(distillation.soft_targets(logits, 10.0).argmax(1), logits.argmax(1))


def test_the_teacher_is_the_students_spec_trained_at_its_temperature():
    student = train.TrainSpec(method="distillation", method_params=(("temperature", 20.0),), epochs=2.0, seed=4)
    teacher = distillation.teacher_spec(student)
    assert (teacher.method, teacher.params.temperature, teacher.epochs, teacher.seed) == (
        "temperature_ce",
        20.0,
        2.0,
        4,
    )
    longer = train.TrainSpec(method="distillation", method_params=(("teacher_epochs", 5.0),), epochs=2.0)
    assert distillation.teacher_spec(longer).epochs == 5.0


@pytest.mark.slow
def test_a_student_learns_from_a_teacher_the_cache_trains_once(monkeypatch):
    spec = train.TrainSpec(
        dataset="mnist",
        train_size=512,
        model="small_cnn",
        width=4,
        method="distillation",
        method_params=(("temperature", 5.0), ("teacher_epochs", 3.0)),
        epochs=2.0,
        batch_size=64,
        lr=3e-3,
        seed=1,
    )
    trained = []
    real_run = train.run  # the training loop a cached model is trained by
    monkeypatch.setattr(
        train, "run", lambda model, split, s, **kw: trained.append(s.method) or real_run(model, split, s, **kw)
    )
    student, meta = train.trained_model(spec)
    # the student's run prepares its teacher first, which the cache trains inside it
    assert trained == ["distillation", "temperature_ce"]
    assert meta["metrics"]["test_accuracy"] > 0.3  # chance is 0.1; 16 batches of 64 images
    other = train.TrainSpec(**{**spec.to_dict(), "epochs": 1.0})  # the same teacher (teacher_epochs 3)
    train.trained_model(other)
    assert trained[2:] == ["distillation"], "a second student reuses the cached teacher"
