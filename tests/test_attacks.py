"""Attacks: epsilon balls, the unit range, clean accuracy at eps 0, an exact hand case."""

from __future__ import annotations

import pytest
import torch

from robinterp import RobinterpError, attacks
from robinterp.attacks import AttackSpec
from tests.conftest import Linear2


def test_fgsm_on_a_hand_checkable_linear_model():
    # logits = x, y = 0: softmax(0.5, 0.5) = (.5, .5), grad_x CE = (.5 - 1, .5) -> sign (-1, +1)
    x = torch.tensor([[[[0.5, 0.5]]]])
    x_adv = attacks.fgsm(Linear2(), x, torch.tensor([0]), eps=0.1)
    assert torch.allclose(x_adv, torch.tensor([[[[0.4, 0.6]]]]))


def test_pgd_without_random_start_on_the_linear_model_walks_to_the_corner():
    # every step moves (-a, +a); projection around the clean x stops it at x -+ eps
    x = torch.tensor([[[[0.5, 0.5]]]])
    x_adv = attacks.pgd(Linear2(), x, torch.tensor([0]), eps=0.2, steps=10, step_size=0.05, random_start=False)
    assert torch.allclose(x_adv, torch.tensor([[[[0.3, 0.7]]]]))


@pytest.mark.parametrize("name", list(attacks.ATTACKS))
@pytest.mark.parametrize("norm,eps", [("linf", 0.3), ("l2", 2.0)])
def test_perturbation_stays_in_the_ball_around_the_clean_input_and_in_unit_range(tiny_cnn, name, norm, eps):
    x = torch.rand(16, 1, 28, 28)
    y = torch.randint(0, 10, (16,))
    # a step size as large as eps would leave the ball without projection around clean x;
    # AutoAttack's parts pick their own steps (two of them keep the test fast)
    options = {"fgsm": {}, "autoattack": {"parts": ("apgd-ce", "apgd-t")}}.get(name, {"steps": 5, "step_size": eps})
    x_adv = attacks.get_attack(name)(tiny_cnn, x, y, eps=eps, norm=norm, seed=0, **options)
    delta = (x_adv - x).flatten(1)
    size = delta.abs().max(1).values if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-5).all()
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0


@pytest.mark.parametrize("name", list(attacks.ATTACKS))
def test_eps_zero_returns_the_clean_input(tiny_cnn, name):
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(attacks.get_attack(name)(tiny_cnn, x, torch.zeros(4, dtype=torch.long), eps=0.0), x)


def test_attacks_run_in_eval_mode_and_restore_each_modules_mode():
    from robinterp import models

    torch.manual_seed(0)
    net = models.build("vgg", "mnist", num_classes=10, shape=(1, 28, 28), width=2)  # BN + dropout
    net.train()
    net[1][0].eval()  # a mixed state must come back as it was
    before = [m.training for m in net.modules()]
    stats = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    a = attacks.pgd(net, x, y, eps=0.1, steps=2, seed=1)
    b = attacks.pgd(net, x, y, eps=0.1, steps=2, seed=1)
    assert torch.equal(a, b), "dropout was active during the attack"
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in stats.items()), "BN stats moved"
    assert [m.training for m in net.modules()] == before


def test_mifgsm_without_momentum_is_iterative_fgsm_with_step_eps_over_steps(tiny_cnn):
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([1, 2, 3])
    got = attacks.mifgsm(tiny_cnn, x, y, eps=0.2, steps=4, decay=0.0)
    want = attacks.pgd(tiny_cnn, x, y, eps=0.2, steps=4, step_size=0.05, random_start=False)
    assert torch.allclose(got, want)


def test_mifgsm_momentum_normalises_by_the_l1_norm():
    # on the linear model the gradient is constant, so momentum only rescales it and
    # the sign steps equal FGSM's direction: two steps of eps/2 reach the corner
    x = torch.tensor([[[[0.5, 0.5]]]])
    got = attacks.mifgsm(Linear2(), x, torch.tensor([0]), eps=0.2, steps=2)
    assert torch.allclose(got, torch.tensor([[[[0.3, 0.7]]]]))


def test_misspelled_attack_options_are_refused(tiny_cnn):
    with pytest.raises(TypeError, match="stepz"):
        attacks.pgd(tiny_cnn, torch.rand(1, 1, 28, 28), torch.tensor([0]), eps=0.1, stepz=100)
    with pytest.raises(RobinterpError, match="steps must be an integer >= 0"):
        attacks.pgd(tiny_cnn, torch.rand(1, 1, 28, 28), torch.tensor([0]), eps=0.1, steps=-1)


def test_robust_accuracy_is_clean_at_zero_and_never_above_clean(blobs, tiny_cnn):
    table = attacks.robust_accuracy(
        tiny_cnn,
        blobs.images[:60],
        blobs.labels[:60],
        attacks=(AttackSpec.of("fgsm"), AttackSpec.of("pgd", steps=3)),
        epsilons=(0.0, 0.1, 0.3),
        batch_size=25,
    )
    clean = int((attacks.predict(tiny_cnn, blobs.images[:60]) == blobs.labels[:60]).sum())
    assert set(table.columns) >= {"attack", "eps", "accuracy", "correct", "n"}
    assert (table[table.eps == 0]["correct"] == clean).all()
    assert (table["correct"] <= clean).all()


def test_pgd_with_a_seed_is_reproducible(tiny_cnn):
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    a = attacks.pgd(tiny_cnn, x, y, eps=0.2, steps=3, seed=7)
    assert torch.equal(a, attacks.pgd(tiny_cnn, x, y, eps=0.2, steps=3, seed=7))


@pytest.mark.parametrize("bad", [-0.1, float("inf"), float("nan")])
def test_bad_epsilon_is_refused(tiny_cnn, bad):
    with pytest.raises(RobinterpError, match="epsilon"):
        attacks.pgd(tiny_cnn, torch.rand(1, 1, 28, 28), torch.tensor([0]), eps=bad)


def test_unknown_attack_and_norm_are_refused(tiny_cnn):
    with pytest.raises(RobinterpError, match="unknown attack 'cw'"):
        attacks.get_attack("cw")
    with pytest.raises(RobinterpError, match="unknown norm 'l1'"):
        attacks.fgsm(tiny_cnn, torch.rand(1, 1, 28, 28), torch.tensor([0]), eps=0.1, norm="l1")


def test_a_bound_attack_refuses_unknown_options_and_runs_like_the_attack(tiny_cnn):
    with pytest.raises(RobinterpError, match="attack 'pgd' has no option 'stepz'; it accepts steps"):
        AttackSpec.of("pgd", stepz=3)
    with pytest.raises(RobinterpError, match="unknown attack 'cw'"):
        AttackSpec.of("cw")
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    bound = AttackSpec.of("pgd", steps=3, step_size=0.05)
    assert torch.equal(
        bound(tiny_cnn, x, y, eps=0.2, seed=7), attacks.pgd(tiny_cnn, x, y, eps=0.2, steps=3, step_size=0.05, seed=7)
    )
    assert bound == AttackSpec.of("pgd", step_size=0.05, steps=3), "one spelling per binding"


@pytest.mark.slow
def test_autoattack_is_seeded_and_at_least_as_strong_as_fgsm(blobs, fitted_tiny_cnn):
    tiny_cnn = fitted_tiny_cnn
    x, y = blobs.images[:16], blobs.labels[:16]
    parts = ("apgd-ce",)  # APGD-T's nine target classes take minutes on a CPU
    first = attacks.autoattack(tiny_cnn, x, y, eps=0.1, parts=parts, seed=3)
    assert torch.equal(first, attacks.autoattack(tiny_cnn, x, y, eps=0.1, parts=parts, seed=3))
    bound = (AttackSpec.of("fgsm"), AttackSpec.of("autoattack", parts=parts))
    table = attacks.robust_accuracy(tiny_cnn, x, y, attacks=bound, epsilons=(0.1,))
    by_attack = table.set_index("attack")["accuracy"]
    assert by_attack["autoattack"] <= by_attack["fgsm"]
    with pytest.raises(RobinterpError, match="unknown AutoAttack part 'apgd'"):
        attacks.autoattack(tiny_cnn, x, y, eps=0.1, parts=("apgd",))


class CountingForwards(torch.nn.Module):
    """A real model that counts its forward passes."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.model(x)


def test_autoattack_parts_run_with_the_standard_versions_single_restart(blobs, fitted_tiny_cnn):
    """pyautoattack's "custom" version would give APGD-CE 5 restarts on every point it cannot
    break; a subset of the standard version must run it as that version does, once (100 steps)."""
    counted = CountingForwards(fitted_tiny_cnn)
    x, y = blobs.images[:8], blobs.labels[:8]
    right = fitted_tiny_cnn(x).argmax(1) == y
    attacks.autoattack(counted, x[right], y[right], eps=1e-4, parts=("apgd-ce",), seed=0)  # too small to break any
    assert 100 <= counted.calls < 2 * 100
