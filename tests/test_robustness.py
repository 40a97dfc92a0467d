"""How a sweep counts robust accuracy (``robinterp.robustness``): clean first, settled images
skipped with early stop, the same counts as each attack alone."""

import pytest
import torch

from robinterp import models, robustness
from robinterp.attacks import AttackSpec
from tests.conftest import CountingForwards


def test_robust_accuracy_is_clean_at_zero_and_never_above_clean(blobs, tiny_cnn):
    table = robustness.robust_accuracy(
        tiny_cnn,
        blobs.images[:60],
        blobs.labels[:60],
        attacks=(AttackSpec.of("fgsm"), AttackSpec.of("pgd", steps=3)),
        epsilons=(0.0, 0.1, 0.3),
        batch_size=25,
    )
    clean = int((models.predict(tiny_cnn, blobs.images[:60]) == blobs.labels[:60]).sum())
    assert set(table.columns) >= {"attack", "eps", "accuracy", "correct", "n"}
    assert (table[table.eps == 0]["correct"] == clean).all()
    assert (table["correct"] <= clean).all()


def test_a_sweep_attacks_only_images_still_right_and_never_rises_with_the_radius(fitted_tiny_cnn, blobs):
    x, y = blobs.images[:120], blobs.labels[:120]
    bound = AttackSpec.of("pgd", steps=5)
    epsilons = (0.3, 0.0, 0.05, 0.15)  # any order: swept from the smallest up, reported as given
    counted = CountingForwards(fitted_tiny_cnn)
    right = robustness.correct_under_attack(counted, x, y, bound, epsilons, seed=2, batch_size=50)
    assert list(right) == list(epsilons)
    clean = fitted_tiny_cnn(x).argmax(1) == y
    assert torch.equal(right[0.0], clean)
    for small, large in ((0.0, 0.05), (0.05, 0.15), (0.15, 0.3)):
        assert not (right[large] & ~right[small]).any(), f"right at {large} but broken at {small}"
    assert 0 < int(right[0.15].sum()) < int(right[0.05].sum()) < int(clean.sum()), "the radii must settle some images"
    # image passes: the clean check, then at each radius above 0 the survivors of the radius below,
    # each for at most its 5 steps and one pass to read the result; those still right after it took all
    attacked = [int(clean.sum()), int(right[0.05].sum()), int(right[0.15].sum())]
    resisted = [int(right[eps].sum()) for eps in (0.05, 0.15, 0.3)]
    assert len(x) + sum((5 + 1) * n for n in resisted) <= counted.images <= len(x) + sum((5 + 1) * n for n in attacked)
    last = robustness.correct_under_attack(
        fitted_tiny_cnn, x, y, bound, epsilons, seed=2, batch_size=50, early_stop=False
    )
    for eps in epsilons:  # same random starts per image: the sweep can only find more
        assert not (right[eps] & ~last[eps]).any(), f"right at {eps} with early stop, broken at the last iterate"
    table = robustness.robust_accuracy(
        fitted_tiny_cnn, x, y, attacks=(bound,), epsilons=epsilons, seed=2, batch_size=50
    )
    assert table.correct.tolist() == [int(right[eps].sum()) for eps in epsilons]


@pytest.mark.parametrize("early_stop", [True, False])
def test_radius_zero_is_the_clean_prediction_without_another_pass(fitted_tiny_cnn, blobs, early_stop):
    x, y = blobs.images[:60], blobs.labels[:60]
    counted = CountingForwards(fitted_tiny_cnn)
    right = robustness.correct_under_attack(counted, x, y, AttackSpec.of("pgd"), (0.0,), early_stop=early_stop)
    assert torch.equal(right[0.0], fitted_tiny_cnn(x).argmax(1) == y)
    assert counted.images == len(x), "the radius-0 ball holds only the clean image: one clean pass is all"
