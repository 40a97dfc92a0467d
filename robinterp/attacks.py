"""Adversarial attacks in pixel space, one function each with one signature.

``attack(model, x, y, *, eps, norm, ...) -> x_adv``: batched, in [0, 1], inside
the eps-ball around the *clean* input, the model's train/eval modes restored.
A norm is a tiny unit (random start, ascent step, projection), as in Madry et
al.'s ``robustness`` library, so every attack works under Linf and L2.

**Adding an attack**: a function with this signature, added to ``ATTACKS``; a
chapter binds it with its options once (``AttackSpec``), which checks the options.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from robinterp import RobinterpError
from robinterp.models import eval_mode, predict
from robinterp.progress import progress


def _flat_norm(t: torch.Tensor, p: float) -> torch.Tensor:
    """Per-sample p-norm, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(p=p, dim=1).clamp_min(1e-12).view(-1, *([1] * (t.ndim - 1)))


class Linf:
    name = "linf"

    @staticmethod
    def random_start(x: torch.Tensor, eps: float, generator: torch.Generator | None) -> torch.Tensor:
        return (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1) * eps

    @staticmethod
    def step(grad: torch.Tensor, step_size: float) -> torch.Tensor:
        return step_size * grad.sign()

    @staticmethod
    def project(delta: torch.Tensor, eps: float) -> torch.Tensor:
        return delta.clamp(-eps, eps)


class L2:
    name = "l2"

    @staticmethod
    def random_start(x: torch.Tensor, eps: float, generator: torch.Generator | None) -> torch.Tensor:
        # uniform in the ball: uniform direction, radius eps * u^(1/d), so in high
        # dimension almost on the sphere (torchattacks draws the radius uniformly instead)
        direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        direction = direction / _flat_norm(direction, 2)
        dim = x[0].numel()
        radius = torch.rand(
            (x.shape[0],) + (1,) * (x.ndim - 1), generator=generator, device=x.device, dtype=x.dtype
        ) ** (1.0 / dim)
        return direction * radius * eps

    @staticmethod
    def step(grad: torch.Tensor, step_size: float) -> torch.Tensor:
        return step_size * grad / _flat_norm(grad, 2)

    @staticmethod
    def project(delta: torch.Tensor, eps: float) -> torch.Tensor:
        return delta * (eps / _flat_norm(delta, 2)).clamp(max=1.0)


NORMS = {"linf": Linf, "l2": L2}


def get_norm(name: str) -> type:
    if name not in NORMS:
        raise RobinterpError(f"unknown norm {name!r}; choose one of {', '.join(NORMS)}")
    return NORMS[name]


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gradient of the summed cross-entropy w.r.t. the input (per-sample, batch-size free)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def _check(eps: float, steps: int = 1, step_size: float | None = None, decay: float = 0.0) -> None:
    if not (0 <= eps < float("inf")):
        raise RobinterpError(f"attack epsilon must be a finite number >= 0, got {eps!r}")
    if not (isinstance(steps, int) and steps >= 0):
        raise RobinterpError(f"attack steps must be an integer >= 0, got {steps!r}")
    if step_size is not None and not (0 < step_size < float("inf")):
        raise RobinterpError(f"attack step_size must be a finite number > 0, got {step_size!r}")
    if not (0 <= decay < float("inf")):
        raise RobinterpError(f"MI-FGSM decay must be a finite number >= 0, got {decay!r}")


def _generator(x: torch.Tensor, seed: int | None) -> torch.Generator | None:
    return None if seed is None else torch.Generator(device=x.device).manual_seed(seed)


def fgsm(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf", seed: int | None = None
) -> torch.Tensor:
    """Fast gradient (sign) method, Goodfellow et al. 2015: one step of size eps.

    Deterministic: ``seed`` is accepted only so that every attack shares a signature.
    """
    _check(eps)
    unit = get_norm(norm)
    if eps == 0:
        return x.detach().clone()
    with eval_mode(model):
        delta = unit.project(unit.step(input_gradient(model, x, y), eps), eps)
    return (x + delta).clamp(0, 1).detach()


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
    seed: int | None = None,
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
    return _projected_ascent(model, x, y, unit, eps, alpha, steps, random_start, _generator(x, seed))


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
) -> torch.Tensor:
    """PGD's loop: every iterate projected onto the eps-ball around the clean ``x`` and onto
    [0, 1]; ``eps`` is a number, or (Linf) a tensor of per-element radii."""
    x = x.detach()
    with eval_mode(model):
        delta = unit.random_start(x, eps, generator) if random_start else torch.zeros_like(x)
        delta = (x + delta).clamp(0, 1) - x
        for _ in range(steps):
            grad = input_gradient(model, x + delta, y)
            delta = unit.project(delta + unit.step(grad, alpha), eps)
            delta = (x + delta).clamp(0, 1) - x
    return (x + delta).detach()


def budget_pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    budget: torch.Tensor,
    steps: int,
    step_size: float,
    random_start: bool = True,
    seed: int | None = None,
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
    seed: int | None = None,
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
    x = x.detach()
    delta = torch.zeros_like(x)
    momentum = torch.zeros_like(x)
    with eval_mode(model):
        for _ in range(steps):
            grad = input_gradient(model, x + delta, y)
            momentum = decay * momentum + grad / _flat_norm(grad, 1)
            delta = unit.project(delta + unit.step(momentum, alpha), eps)
            delta = (x + delta).clamp(0, 1) - x
    return (x + delta).detach()


AUTOATTACK_PARTS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")


def autoattack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    seed: int | None = None,
    version: str = "standard",
    parts: tuple[str, ...] = (),
) -> torch.Tensor:
    """AutoAttack (Croce and Hein 2020) through ``pyautoattack``, the official code packaged.

    ``version="standard"`` runs APGD-CE, APGD-T, FAB-T and Square in turn, each on
    the points the earlier ones did not break; ``parts`` runs a subset of them (for
    a CPU budget), each with the version's settings (restarts, target classes). Seeded (seed 0 when None): pyautoattack otherwise seeds from the clock.
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
            seed=0 if seed is None else seed,
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
_SHARED = ("model", "x", "y", "eps", "norm", "seed")  # what every attack takes; options are the rest


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
        seed: int | None = None,
    ) -> torch.Tensor:
        return get_attack(self.name)(model, x, y, eps=eps, norm=norm, seed=seed, **dict(self.options))


def robust_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    attacks: Sequence[AttackSpec],
    epsilons: tuple[float, ...],
    norm: str = "linf",
    batch_size: int = 500,
    seed: int = 0,
    desc: str = "attacks",
) -> pd.DataFrame:
    """Accuracy under each attack at each epsilon, as a tidy table.

    ``attacks`` are the bound attacks to run, each at every epsilon.
    Columns: attack, norm, eps, accuracy, correct, n. A sample counts as correct
    when both its clean and its adversarial prediction are right (as AutoAttack
    and RobustBench count), so robust accuracy never exceeds clean accuracy;
    eps = 0 is clean accuracy.
    """
    rows = []
    clean_pred = predict(model, x)
    jobs = [(attack, eps) for attack in attacks for eps in epsilons]
    for attack, eps in progress(jobs, desc=desc):
        correct = 0
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            x_adv = attack(model, xb, yb, eps=eps, norm=norm, seed=seed + start)
            right = (clean_pred[start : start + batch_size] == yb) & (predict(model, x_adv) == yb)
            correct += int(right.sum())
        rows.append(
            {
                "attack": attack.name,
                "norm": norm,
                "eps": eps,
                "accuracy": correct / len(x),
                "correct": correct,
                "n": len(x),
            }
        )
    return pd.DataFrame(rows)
