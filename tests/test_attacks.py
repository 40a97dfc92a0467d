"""Attacks: epsilon balls, the unit range, clean accuracy at eps 0, an exact hand case."""

from __future__ import annotations

import pytest
import torch

from robinterp import RobinterpError, attacks, robustness
from robinterp.attacks import AttackSpec
from robinterp.attacks._steps import image_seeds
from robinterp.attacks.autoattack import autoattack
from robinterp.attacks.fgsm import fgsm
from robinterp.attacks.mifgsm import mifgsm
from robinterp.attacks.pgd import pgd
from tests.conftest import CountingForwards, Linear2, user_module


def test_fgsm_on_a_hand_checkable_linear_model():
    # logits = x, y = 0: softmax(0.5, 0.5) = (.5, .5), grad_x CE = (.5 - 1, .5) -> sign (-1, +1)
    x = torch.tensor([[[[0.5, 0.5]]]])
    x_adv = fgsm(Linear2(), x, torch.tensor([0]), eps=0.1)
    assert torch.allclose(x_adv, torch.tensor([[[[0.4, 0.6]]]]))


def test_pgd_without_random_start_on_the_linear_model_walks_to_the_corner():
    # every step moves (-a, +a); projection around the clean x stops it at x -+ eps
    x = torch.tensor([[[[0.5, 0.5]]]])
    x_adv = pgd(Linear2(), x, torch.tensor([0]), eps=0.2, steps=10, step_size=0.05, random_start=False)
    assert torch.allclose(x_adv, torch.tensor([[[[0.3, 0.7]]]]))


@pytest.mark.parametrize("name", list(attacks.registry()))
@pytest.mark.parametrize("norm,eps", [("linf", 0.3), ("l2", 2.0)])
def test_perturbation_stays_in_the_ball_around_the_clean_input_and_in_unit_range(tiny_cnn, name, norm, eps):
    x = torch.rand(16, 1, 28, 28)
    y = torch.randint(0, 10, (16,))
    # a step size as large as eps would leave the ball without projection around clean x;
    # AutoAttack's parts pick their own steps (two of them keep the test fast)
    options = {"fgsm": {}, "autoattack": {"parts": ("apgd-ce", "apgd-t")}}.get(name, {"steps": 5, "step_size": eps})
    x_adv = attacks.get_attack(name).function(tiny_cnn, x, y, eps=eps, norm=norm, seed=0, **options)
    delta = (x_adv - x).flatten(1)
    size = delta.abs().max(1).values if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-5).all()
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0


@pytest.mark.parametrize("name", list(attacks.registry()))
def test_eps_zero_returns_the_clean_input(tiny_cnn, name):
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(attacks.get_attack(name).function(tiny_cnn, x, torch.zeros(4, dtype=torch.long), eps=0.0), x)


def test_attacks_run_in_eval_mode_and_restore_each_modules_mode():
    from robinterp import models

    torch.manual_seed(0)
    net = models.build("vgg", "mnist", num_classes=10, shape=(1, 28, 28), width=2)  # BN + dropout
    net.train()
    net[1][0].eval()  # a mixed state must come back as it was
    before = [m.training for m in net.modules()]
    stats = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    a = pgd(net, x, y, eps=0.1, steps=2, seed=1)
    b = pgd(net, x, y, eps=0.1, steps=2, seed=1)
    assert torch.equal(a, b), "dropout was active during the attack"
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in stats.items()), "BN stats moved"
    assert [m.training for m in net.modules()] == before


def test_mifgsm_without_momentum_is_iterative_fgsm_with_step_eps_over_steps(tiny_cnn):
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([1, 2, 3])
    got = mifgsm(tiny_cnn, x, y, eps=0.2, steps=4, decay=0.0)
    want = pgd(tiny_cnn, x, y, eps=0.2, steps=4, step_size=0.05, random_start=False)
    assert torch.allclose(got, want)


def test_mifgsm_momentum_normalises_by_the_l1_norm():
    # on the linear model the gradient is constant, so momentum only rescales it and
    # the sign steps equal FGSM's direction: two steps of eps/2 reach the corner
    x = torch.tensor([[[[0.5, 0.5]]]])
    got = mifgsm(Linear2(), x, torch.tensor([0]), eps=0.2, steps=2)
    assert torch.allclose(got, torch.tensor([[[[0.3, 0.7]]]]))


def test_misspelled_attack_options_are_refused(tiny_cnn):
    with pytest.raises(TypeError, match="stepz"):
        pgd(tiny_cnn, torch.rand(1, 1, 28, 28), torch.tensor([0]), eps=0.1, stepz=100)
    with pytest.raises(RobinterpError, match="steps must be an integer >= 0"):
        pgd(tiny_cnn, torch.rand(1, 1, 28, 28), torch.tensor([0]), eps=0.1, steps=-1)


def test_pgd_with_a_seed_is_reproducible(tiny_cnn):
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    a = pgd(tiny_cnn, x, y, eps=0.2, steps=3, seed=7)
    assert torch.equal(a, pgd(tiny_cnn, x, y, eps=0.2, steps=3, seed=7))


@pytest.mark.parametrize("bad", [-0.1, float("inf"), float("nan")])
def test_bad_epsilon_is_refused(tiny_cnn, bad):
    with pytest.raises(RobinterpError, match="epsilon"):
        pgd(tiny_cnn, torch.rand(1, 1, 28, 28), torch.tensor([0]), eps=bad)


def test_unknown_attack_and_norm_are_refused(tiny_cnn):
    with pytest.raises(RobinterpError, match="unknown attack 'cw'"):
        attacks.get_attack("cw")
    with pytest.raises(RobinterpError, match="unknown norm 'l1'"):
        fgsm(tiny_cnn, torch.rand(1, 1, 28, 28), torch.tensor([0]), eps=0.1, norm="l1")


def test_a_bound_attack_refuses_unknown_options_and_runs_like_the_attack(tiny_cnn):
    with pytest.raises(RobinterpError, match="attack 'pgd' has no option 'stepz'; it accepts steps"):
        AttackSpec.of("pgd", stepz=3)
    with pytest.raises(RobinterpError, match="unknown attack 'cw'"):
        AttackSpec.of("cw")
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    bound = AttackSpec.of("pgd", steps=3, step_size=0.05)
    assert torch.equal(
        bound(tiny_cnn, x, y, eps=0.2, seed=7), pgd(tiny_cnn, x, y, eps=0.2, steps=3, step_size=0.05, seed=7)
    )
    assert bound == AttackSpec.of("pgd", step_size=0.05, steps=3), "one spelling per binding"


@pytest.mark.slow
def test_autoattack_is_seeded_and_at_least_as_strong_as_fgsm(blobs, fitted_tiny_cnn):
    tiny_cnn = fitted_tiny_cnn
    x, y = blobs.images[:16], blobs.labels[:16]
    parts = ("apgd-ce",)  # APGD-T's nine target classes take minutes on a CPU
    first = autoattack(tiny_cnn, x, y, eps=0.1, parts=parts, seed=3)
    assert torch.equal(first, autoattack(tiny_cnn, x, y, eps=0.1, parts=parts, seed=3))
    bound = (AttackSpec.of("fgsm"), AttackSpec.of("autoattack", parts=parts))
    table = robustness.robust_accuracy(tiny_cnn, x, y, attacks=bound, epsilons=(0.1,))
    by_attack = table.set_index("attack")["accuracy"]
    assert by_attack["autoattack"] <= by_attack["fgsm"]
    with pytest.raises(RobinterpError, match="unknown AutoAttack part 'apgd'"):
        autoattack(tiny_cnn, x, y, eps=0.1, parts=("apgd",))


def test_autoattack_parts_run_with_the_standard_versions_single_restart(blobs, fitted_tiny_cnn):
    """pyautoattack's "custom" version would give APGD-CE 5 restarts on every point it cannot
    break; a subset of the standard version must run it as that version does, once (100 steps)."""
    counted = CountingForwards(fitted_tiny_cnn)
    x, y = blobs.images[:8], blobs.labels[:8]
    right = fitted_tiny_cnn(x).argmax(1) == y
    autoattack(counted, x[right], y[right], eps=1e-4, parts=("apgd-ce",), seed=0)  # too small to break any
    assert 100 <= counted.calls < 2 * 100


class Bump(torch.nn.Module):
    """Class 1 wins only near pixel value 0.5 (|x - 0.5| < 0.05): an attack that steps over the
    bump breaks the image at one iterate and loses it at the next."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixel = x.flatten(1)[:, :1]
        return torch.cat([torch.zeros_like(pixel), 1 - 400 * (pixel - 0.5) ** 2], dim=1)


def test_early_stop_keeps_the_iterate_that_broke_the_image_where_the_last_one_does_not():
    x, y = torch.tensor([[[[0.3]]]]), torch.tensor([0])
    options = {"eps": 0.4, "steps": 2, "step_size": 0.18, "random_start": False}
    last = pgd(Bump(), x, y, **options)  # 0.3 -> 0.48 (broken) -> 0.66 (right again)
    first = pgd(Bump(), x, y, **options, early_stop=True)
    assert torch.allclose(last, torch.tensor(0.66)) and torch.allclose(first, torch.tensor(0.48))
    bound = (AttackSpec.of("pgd", steps=2, step_size=0.18, random_start=False),)
    counted = {
        stop: robustness.robust_accuracy(Bump(), x, y, attacks=bound, epsilons=(0.4,), early_stop=stop)[
            "correct"
        ].item()
        for stop in (True, False)
    }
    assert counted == {True: 0, False: 1}


@pytest.mark.parametrize("name", ["fgsm", "pgd", "mifgsm"])
def test_early_stop_returns_images_wrong_at_the_start_unattacked(fitted_tiny_cnn, blobs, name):
    x, y = blobs.images[:40], blobs.labels[:40]
    wrong = fitted_tiny_cnn(x).argmax(1) != y
    x, y = x[wrong], y[wrong]
    assert len(x) > 0
    counted = CountingForwards(fitted_tiny_cnn)
    options = {"random_start": False} if name == "pgd" else {}  # the start is then the clean image
    x_adv = attacks.get_attack(name).function(counted, x, y, eps=0.3, seed=0, early_stop=True, **options)
    assert torch.equal(x_adv, x) and counted.calls == 1  # one pass, at the start, and they leave


def test_per_image_seeds_make_an_images_attack_independent_of_its_batch(fitted_tiny_cnn, blobs):
    x, y = blobs.images[:30], blobs.labels[:30]
    seeds = image_seeds(4, len(x))
    for norm, eps in (("linf", 0.2), ("l2", 1.5)):
        whole = pgd(fitted_tiny_cnn, x, y, eps=eps, norm=norm, steps=3, seed=seeds)
        part = pgd(fitted_tiny_cnn, x[7:19], y[7:19], eps=eps, norm=norm, steps=3, seed=seeds[7:19])
        assert torch.allclose(part, whole[7:19], atol=1e-6)
        assert not torch.allclose(whole, pgd(fitted_tiny_cnn, x, y, eps=eps, norm=norm, steps=3, seed=4))


@pytest.mark.parametrize(
    "bound", [AttackSpec.of("fgsm"), AttackSpec.of("pgd", steps=10), AttackSpec.of("mifgsm", steps=10)], ids=str
)
def test_early_stop_follows_the_same_path_never_counts_more_and_passes_fewer_images(fitted_tiny_cnn, blobs, bound):
    x, y = blobs.images[:200], blobs.labels[:200]
    runs = {}
    for stop in (True, False):
        counted = CountingForwards(fitted_tiny_cnn)
        x_adv = bound(counted, x, y, eps=0.15, seed=image_seeds(3, len(x)), early_stop=stop)
        right = (fitted_tiny_cnn(x).argmax(1) == y) & (fitted_tiny_cnn(x_adv).argmax(1) == y)
        runs[stop] = (x_adv, right, counted.images)
    (adv_first, right_first, images_first), (adv_last, right_last, images_last) = runs[True], runs[False]
    assert 0 < int(right_last.sum()) < len(x), "the radius must break some images and not all"
    assert not (right_first & ~right_last).any(), "an image survived early stop that the last iterate broke"
    # images that survive every iterate took every step, on the path they take without early stop
    assert torch.allclose(adv_first[right_first], adv_last[right_first], atol=1e-6)
    if bound.name != "fgsm":  # one step: nothing to save but the images wrong when clean
        assert images_first < images_last


def test_a_bound_attack_passes_early_stop_to_the_attack(tiny_cnn):
    x, y = torch.rand(6, 1, 28, 28), torch.arange(6)
    bound = AttackSpec.of("pgd", steps=3)
    assert torch.equal(
        bound(tiny_cnn, x, y, eps=0.2, seed=1, early_stop=True),
        pgd(tiny_cnn, x, y, eps=0.2, steps=3, seed=1, early_stop=True),
    )


# A whole attack written by a user, outside the package: a random sign step of size eps.
TOY_ATTACK = '''
"""A toy attack: one random sign step of size eps (a floor any real attack should beat)."""

import dataclasses

import torch

from robinterp.attacks import Attack
from robinterp.config import Config


@dataclasses.dataclass(frozen=True)
class NoiseOptions(Config):
    """No option besides the shared ones."""


def noise(model, x, y, *, eps, norm="linf", seed=None, early_stop=False):
    """A random sign step of size eps, clipped to [0, 1]."""
    generator = torch.Generator().manual_seed(0 if seed is None else int(torch.as_tensor(seed).flatten()[0]))
    step = torch.randint(0, 2, x.shape, generator=generator).to(x) * 2 - 1
    return (x + eps * step).clamp(0, 1).detach()


ATTACK = Attack("random_sign", noise, __name__, NoiseOptions, evaluation_only=True)
'''


@pytest.fixture
def toy_attack(tmp_path, monkeypatch):
    """The toy attack module on sys.path and named for the registry."""
    return user_module(tmp_path / "user_attacks", monkeypatch, "toy_sign_attack", TOY_ATTACK, attacks.ENVIRONMENT)


def test_every_attack_documents_its_options_as_its_function_takes_them():
    import dataclasses
    import inspect

    from robinterp.config import field_docs

    for name, attack in attacks.registry().items():
        signature = inspect.signature(attack.function).parameters
        fields = {f.name: f.default for f in dataclasses.fields(attack.options_class)}
        assert list(fields) == attack.options(), name
        assert all(signature[k].default == v for k, v in fields.items()), name
        assert set(field_docs(attack.options_class)) == set(fields), name


def test_a_method_depends_on_the_attacks_it_trains_with_and_never_on_an_evaluation_only_one():
    from robinterp import train
    from robinterp.codehash import PACKAGE, module_closure

    def files(method: str) -> set[str]:
        spec = train.TrainSpec(method=method)
        return {p.relative_to(PACKAGE).as_posix() for p in module_closure(PACKAGE, train.model_code(spec))}

    assert {"attacks/pgd.py", "attacks/_steps.py"} <= files("pgd_at")
    for method in ("pgd_at", "fgsm_at", "sgt", "asgt", "scaat"):
        assert "attacks/autoattack.py" not in files(method), method
    assert not any(f.startswith("attacks/") for f in files("standard"))
    assert attacks.get_attack("autoattack").evaluation_only and not attacks.get_attack("pgd").evaluation_only


def test_an_attack_module_keys_the_measures_under_it_and_no_other():
    from robinterp import measures
    from robinterp.codehash import code_version
    from robinterp.measures.attack import AttackSettings

    def code(name: str, **options) -> str:
        settings = AttackSettings("mnist", 4, AttackSpec.of(name, **options), (0.1,))
        unit = measures.measure_of(settings)
        return code_version((unit.module, *unit.code(settings)))

    assert code("pgd") != code("autoattack") and code("pgd") == code("pgd", steps=3)


@pytest.mark.slow
def test_a_toy_attack_listed_in_a_config_appears_in_the_tables_and_the_synthesis_with_no_other_edit(toy_attack):
    """The attacks-as-units promise: a new module and one config entry, nothing else."""
    import dataclasses

    from robinterp.chapters import resolve_config
    from robinterp.experiments import robust_models, synthesis

    assert attacks.get_attack("random_sign").module == "toy_sign_attack"
    smoke, _ = resolve_config("robust_models", profile="smoke", settings=None)
    listed = {"pgd": {"attack": "pgd", "steps": 2}, "random sign": {"attack": "random_sign"}}
    cfg = dataclasses.replace(smoke, seeds=(0,), attacks=listed)
    trained, _ = robust_models.train_all(cfg)
    table = robust_models.robust_per_image(cfg, trained)
    assert set(table.attack) == {"pgd", "random sign"}
    assert len(table[table.attack == "random sign"]) == len(table[table.attack == "pgd"])
    pgd_mean = table[(table.attack == "pgd") & (table.eps == max(cfg.epsilons))].correct.mean()
    sign_mean = table[(table.attack == "random sign") & (table.eps == max(cfg.epsilons))].correct.mean()
    assert sign_mean >= pgd_mean  # a random step breaks no more than PGD does

    columns = [m.name for m in synthesis.measures(synthesis.SynthesisConfig(attacks=listed))]
    assert "random sign@0.3" in columns and "pgd@0.1" in columns and "mifgsm@0.1" not in columns
