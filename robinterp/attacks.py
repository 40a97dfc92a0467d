"""Adversarial attacks in pixel space, one function each with one signature.

``attack(model, x, y, *, eps, norm, seed, early_stop, ...) -> x_adv``: batched, in [0, 1],
inside the eps-ball around the *clean* input, the model's train/eval modes restored.

``early_stop`` is how an evaluation counts (the convention of AutoAttack and RobustBench):
an image leaves the attack at the first iterate the model misclassifies (its starting point
included) and that iterate is returned, so an image broken at some step stays broken. Without
it (training, and evaluation with ``attack_early_stop: false``) every image takes every step
and only the last iterate counts. The images still attacked follow exactly the path they would
follow without it (same random start, same steps), so robust accuracy with it is never higher,
up to floating-point summation order.

``seed`` is None, one int for the batch, or one per image (a tensor): then image i's random
start is drawn from its own generator, so its attack does not depend on which images share
its batch (an evaluation that skips settled images relies on it).
A norm is a tiny unit (random start, ascent step, projection), as in Madry et
al.'s ``robustness`` library, so every attack works under Linf and L2.

**Adding an attack**: a function with this signature, added to ``ATTACKS``; a
chapter binds it with its options once (``AttackSpec``), which checks the options.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robinterp import RobinterpError
from robinterp.models import eval_mode


def _flat_norm(t: torch.Tensor, p: float) -> torch.Tensor:
    """Per-sample p-norm, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(p=p, dim=1).clamp_min(1e-12).view(-1, *([1] * (t.ndim - 1)))


class Linf:
    name = "linf"

    @staticmethod
    def random_start(x: torch.Tensor, eps: float, generator: Generators) -> torch.Tensor:
        return (_draw(torch.rand, x.shape, generator, x) * 2 - 1) * eps

    @staticmethod
    def step(grad: torch.Tensor, step_size: float) -> torch.Tensor:
        return step_size * grad.sign()

    @staticmethod
    def project(delta: torch.Tensor, eps: float) -> torch.Tensor:
        return delta.clamp(-eps, eps)


class L2:
    name = "l2"

    @staticmethod
    def random_start(x: torch.Tensor, eps: float, generator: Generators) -> torch.Tensor:
        # uniform in the ball: uniform direction, radius eps * u^(1/d), so in high
        # dimension almost on the sphere (torchattacks draws the radius uniformly instead)
        direction = _draw(torch.randn, x.shape, generator, x)
        direction = direction / _flat_norm(direction, 2)
        radius = _draw(torch.rand, (x.shape[0],) + (1,) * (x.ndim - 1), generator, x) ** (1.0 / x[0].numel())
        return direction * radius * eps

    @staticmethod
    def step(grad: torch.Tensor, step_size: float) -> torch.Tensor:
        return step_size * grad / _flat_norm(grad, 2)

    @staticmethod
    def project(delta: torch.Tensor, eps: float) -> torch.Tensor:
        return delta * (eps / _flat_norm(delta, 2)).clamp(max=1.0)


NORMS = {"linf": Linf, "l2": L2}
Generators = torch.Generator | list[torch.Generator] | None


def get_norm(name: str) -> type:
    if name not in NORMS:
        raise RobinterpError(f"unknown norm {name!r}; choose one of {', '.join(NORMS)}")
    return NORMS[name]


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gradient of the summed cross-entropy w.r.t. the input (per-sample, batch-size free)."""
    return _gradient_and_logits(model, x, y)[0]


def _gradient_and_logits(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``input_gradient`` and the logits of the same forward pass (an early stop reads them)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x)
    return grad, logits.detach()


Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, dict], tuple[torch.Tensor, dict]]


def _iterate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    delta: torch.Tensor,
    step: Step,
    steps: int,
    early_stop: bool,
    carried: dict[str, torch.Tensor],
) -> torch.Tensor:
    """The loop of the iterative attacks: ``steps`` times, the loss gradient at ``x + delta`` and
    ``step(x, delta, grad, carried) -> (delta, carried)``, where ``carried`` holds per-image
    tensors (momentum, per-element radii). With ``early_stop`` an image leaves the loop at the
    first iterate the model misclassifies, the start ``x + delta`` included (see the module's
    docstring); returns ``x_adv``. Call in eval mode."""
    x = x.detach()
    if not early_stop:
        for _ in range(steps):
            delta, carried = step(x, delta, input_gradient(model, x + delta, y), carried)
        return (x + delta).detach()
    delta = delta.clone()
    active = torch.arange(len(x), device=x.device)
    x_now, y_now, delta_now = x, y, delta
    for _ in range(steps):
        if not len(active):
            break
        grad, logits = _gradient_and_logits(model, x_now + delta_now, y_now)
        right = logits.argmax(1) == y_now
        if not right.all():  # broken at this iterate: keep it, and attack only the others
            delta[active[~right]] = delta_now[~right]
            active, x_now, y_now, delta_now, grad = (t[right] for t in (active, x_now, y_now, delta_now, grad))
            carried = {name: value[right] for name, value in carried.items()}
        delta_now, carried = step(x_now, delta_now, grad, carried)
    delta[active] = delta_now
    return (x + delta).detach()


def _check(eps: float, steps: int = 1, step_size: float | None = None, decay: float = 0.0) -> None:
    if not (0 <= eps < float("inf")):
        raise RobinterpError(f"attack epsilon must be a finite number >= 0, got {eps!r}")
    if not (isinstance(steps, int) and steps >= 0):
        raise RobinterpError(f"attack steps must be an integer >= 0, got {steps!r}")
    if step_size is not None and not (0 < step_size < float("inf")):
        raise RobinterpError(f"attack step_size must be a finite number > 0, got {step_size!r}")
    if not (0 <= decay < float("inf")):
        raise RobinterpError(f"MI-FGSM decay must be a finite number >= 0, got {decay!r}")


def _generator(x: torch.Tensor, seed: int | torch.Tensor | None) -> Generators:
    """None, one generator for the batch (an int seed), or one per image (a tensor of seeds)."""
    if seed is None:
        return None
    if isinstance(seed, torch.Tensor):
        return [torch.Generator(device=x.device).manual_seed(int(s)) for s in seed.tolist()]
    return torch.Generator(device=x.device).manual_seed(seed)


def _draw(sample: Callable[..., torch.Tensor], shape: tuple[int, ...], generator: Generators, like: torch.Tensor):
    """``sample`` (torch.rand or torch.randn) of ``shape`` on ``like``'s device and dtype: from one
    generator, or row i from generator i."""
    if isinstance(generator, list):
        rows = [sample(shape[1:], generator=g, device=like.device, dtype=like.dtype) for g in generator]
        return torch.stack(rows) if rows else torch.empty(shape, device=like.device, dtype=like.dtype)
    return sample(shape, generator=generator, device=like.device, dtype=like.dtype)


def image_seeds(seed: int, n: int) -> torch.Tensor:
    """One seed per image of an evaluation set, drawn from ``seed``."""
    return torch.randint(0, 2**62, (n,), generator=torch.Generator().manual_seed(seed))


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    seed: int | torch.Tensor | None = None,
    early_stop: bool = False,
) -> torch.Tensor:
    """Fast gradient (sign) method, Goodfellow et al. 2015: one step of size eps.

    Deterministic: ``seed`` is accepted only so that every attack shares a signature.
    """
    _check(eps)
    unit = get_norm(norm)
    if eps == 0:
        return x.detach().clone()

    def ascend(x: torch.Tensor, delta: torch.Tensor, grad: torch.Tensor, carried: dict) -> tuple[torch.Tensor, dict]:
        return (x + unit.project(unit.step(grad, eps), eps)).clamp(0, 1) - x, carried

    with eval_mode(model):
        return _iterate(model, x, y, torch.zeros_like(x), ascend, 1, early_stop, {})


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    steps: int = 20,
    step_size: float | None = None,
    random_start: bool = True,
    seed: int | torch.Tensor | None = None,
    early_stop: bool = False,
) -> torch.Tensor:
    """Projected gradient descent, Madry et al. 2018.

    ``step_size`` defaults to 2.5 * eps / steps (the rule of Madry's group's
    ``robustness`` library; the paper used 0.01 at eps 0.3 on MNIST). Every
    iterate is projected onto the eps-ball around the clean ``x`` and onto [0, 1].
    """
    _check(eps, steps, step_size)
    unit = get_norm(norm)
    if eps == 0 or steps == 0:
        return x.detach().clone()
    alpha = 2.5 * eps / steps if step_size is None else step_size
    return _projected_ascent(model, x, y, unit, eps, alpha, steps, random_start, _generator(x, seed), early_stop)


def _projected_ascent(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    unit: type,
    eps: float | torch.Tensor,
    alpha: float,
    steps: int,
    random_start: bool,
    generator: torch.Generator | None,
    early_stop: bool = False,
) -> torch.Tensor:
    """PGD's loop: every iterate projected onto the eps-ball around the clean ``x`` and onto
    [0, 1]; ``eps`` is a number, or (Linf) a tensor of per-element radii."""
    x = x.detach()
    # a tensor of radii travels with the images (an early stop drops some of them)
    carried = {"eps": eps} if isinstance(eps, torch.Tensor) else {}

    def ascend(x: torch.Tensor, delta: torch.Tensor, grad: torch.Tensor, carried: dict) -> tuple[torch.Tensor, dict]:
        radius = carried.get("eps", eps)
        delta = unit.project(delta + unit.step(grad, alpha), radius)
        return (x + delta).clamp(0, 1) - x, carried

    with eval_mode(model):
        delta = unit.random_start(x, eps, generator) if random_start else torch.zeros_like(x)
        delta = (x + delta).clamp(0, 1) - x
        return _iterate(model, x, y, delta, ascend, steps, early_stop, carried)


def budget_pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    budget: torch.Tensor,
    steps: int,
    step_size: float,
    random_start: bool = True,
    seed: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """PGD under a per-element Linf budget: |x_adv - x| <= budget elementwise, x_adv in [0, 1].

    ``budget`` (>= 0) broadcasts against ``x``: one radius per pixel, per sample or one for
    all. With the same radius everywhere it is ``pgd`` exactly (same draws, same steps).
    Not in ``ATTACKS``: it is a training-time tool (SCAAT's saliency-shaped budget).
    """
    _check(0.0, steps, step_size)
    budget = torch.as_tensor(budget, dtype=x.dtype, device=x.device).expand_as(x)
    if not (torch.isfinite(budget).all() and (budget >= 0).all()):
        raise RobinterpError("the per-element budget must be finite and >= 0 everywhere")
    if steps == 0 or not budget.any():
        return x.detach().clone()
    return _projected_ascent(model, x, y, Linf, budget, step_size, steps, random_start, _generator(x, seed))


def mifgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    steps: int = 10,
    decay: float = 1.0,
    step_size: float | None = None,
    seed: int | torch.Tensor | None = None,
    early_stop: bool = False,
) -> torch.Tensor:
    """Momentum iterative FGSM, Dong et al. 2018: g <- mu g + grad / ||grad||_1.

    ``step_size`` defaults to eps / steps, as in the paper. Deterministic (no
    random start): ``seed`` only keeps the signature shared.
    """
    _check(eps, steps, step_size, decay)
    unit = get_norm(norm)
    if eps == 0 or steps == 0:
        return x.detach().clone()
    alpha = eps / steps if step_size is None else step_size

    def ascend(x: torch.Tensor, delta: torch.Tensor, grad: torch.Tensor, carried: dict) -> tuple[torch.Tensor, dict]:
        momentum = decay * carried["momentum"] + grad / _flat_norm(grad, 1)
        delta = unit.project(delta + unit.step(momentum, alpha), eps)
        return (x + delta).clamp(0, 1) - x, {"momentum": momentum}

    with eval_mode(model):
        return _iterate(model, x, y, torch.zeros_like(x), ascend, steps, early_stop, {"momentum": torch.zeros_like(x)})


AUTOATTACK_PARTS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")


def autoattack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    seed: int | torch.Tensor | None = None,
    early_stop: bool = True,
    version: str = "standard",
    parts: tuple[str, ...] = (),
) -> torch.Tensor:
    """AutoAttack (Croce and Hein 2020) through ``pyautoattack``, the official code packaged.

    ``version="standard"`` runs APGD-CE, APGD-T, FAB-T and Square in turn, each on
    the points the earlier ones did not break; ``parts`` runs a subset of them (for
    a CPU budget), each with the version's settings (restarts, target classes). Seeded
    (seed 0 when None): pyautoattack otherwise seeds from the clock. It always stops early
    (attacks only the points classified right, keeps any success): ``early_stop`` is accepted
    only so that every attack shares a signature.
    """
    _check(eps)
    unit = get_norm(norm)
    unknown = [p for p in parts if p not in AUTOATTACK_PARTS]
    if unknown:
        raise RobinterpError(f"unknown AutoAttack part {unknown[0]!r}; choose from {', '.join(AUTOATTACK_PARTS)}")
    if eps == 0:
        return x.detach().clone()
    try:
        from pyautoattack import AutoAttack
    except ImportError:
        raise RobinterpError(
            "AutoAttack needs the pyautoattack package: pip install pyautoattack==0.2.0 (it is in requirements.txt)"
        ) from None
    with eval_mode(model):
        adversary = AutoAttack(
            model,
            norm={"linf": "Linf", "l2": "L2"}[unit.name],
            eps=eps,
            version=version,
            # one generator for the batch: the first image's seed when they come per image
            seed=0 if seed is None else int(seed if isinstance(seed, int) else seed.flatten()[0]),
            device=x.device,
        )
        if parts:
            # Each part as the chosen version runs it: pyautoattack's "custom" version would run
            # APGD-CE and FAB with 5 restarts, not the standard version's one (5x the cost on the
            # points that resist), so the version's settings are kept and only the list changes.
            adversary.attacks_to_run = list(parts)
        x_adv, _ = adversary.run_standard_evaluation(x.detach(), y, batch_size=len(x))
    return x_adv.detach()


Attack = Callable[..., torch.Tensor]
ATTACKS: dict[str, Attack] = {"fgsm": fgsm, "pgd": pgd, "mifgsm": mifgsm, "autoattack": autoattack}
_SHARED = ("model", "x", "y", "eps", "norm", "seed", "early_stop")  # what every attack takes; options are the rest


def get_attack(name: str) -> Attack:
    if name not in ATTACKS:
        raise RobinterpError(f"unknown attack {name!r}; choose one of {', '.join(ATTACKS)}")
    return ATTACKS[name]


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """An attack and its options (steps, step size...), bound once from a chapter's config.

    Built when the config is, so an unknown attack or option stops a run before any
    work; called like the attack itself, with the radius, norm and seed.
    """

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        accepted = [p for p in inspect.signature(get_attack(self.name)).parameters if p not in _SHARED]
        for key, _ in self.options:
            if key not in accepted:
                raise RobinterpError(f"attack {self.name!r} has no option {key!r}; it accepts {', '.join(accepted)}")
        object.__setattr__(self, "options", tuple(sorted(self.options)))

    @classmethod
    def of(cls, name: str, **options: Any) -> AttackSpec:
        return cls(name, tuple(options.items()))

    def __call__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: float,
        norm: str = "linf",
        seed: int | torch.Tensor | None = None,
        early_stop: bool = False,
    ) -> torch.Tensor:
        return get_attack(self.name)(
            model, x, y, eps=eps, norm=norm, seed=seed, early_stop=early_stop, **dict(self.options)
        )
