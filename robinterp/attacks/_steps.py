"""What the attacks share: a norm as a tiny unit (random start, ascent step, projection), as in
Madry et al.'s ``robustness`` library, so that every attack works under Linf and L2; the input
gradient; the loop of the iterative attacks with its early stop; per-image random generators;
the checks of the shared arguments. Training and evaluation both run it."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from robinterp import RobinterpError


def flat_norm(t: torch.Tensor, p: float) -> torch.Tensor:
    """Per-sample p-norm, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(p=p, dim=1).clamp_min(1e-12).view(-1, *([1] * (t.ndim - 1)))


class Linf:
    name = "linf"

    @staticmethod
    def random_start(x: torch.Tensor, eps: float, generator: Generators) -> torch.Tensor:
        return (draw(torch.rand, x.shape, generator, x) * 2 - 1) * eps

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
        direction = draw(torch.randn, x.shape, generator, x)
        direction = direction / flat_norm(direction, 2)
        radius = draw(torch.rand, (x.shape[0],) + (1,) * (x.ndim - 1), generator, x) ** (1.0 / x[0].numel())
        return direction * radius * eps

    @staticmethod
    def step(grad: torch.Tensor, step_size: float) -> torch.Tensor:
        return step_size * grad / flat_norm(grad, 2)

    @staticmethod
    def project(delta: torch.Tensor, eps: float) -> torch.Tensor:
        return delta * (eps / flat_norm(delta, 2)).clamp(max=1.0)


NORMS = {"linf": Linf, "l2": L2}
Generators = torch.Generator | list[torch.Generator] | None


def get_norm(name: str) -> type:
    if name not in NORMS:
        raise RobinterpError(f"unknown norm {name!r}; choose one of {', '.join(NORMS)}")
    return NORMS[name]


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gradient of the summed cross-entropy w.r.t. the input (per-sample, batch-size free)."""
    return gradient_and_logits(model, x, y)[0]


def gradient_and_logits(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``input_gradient`` and the logits of the same forward pass (an early stop reads them)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x)
    return grad, logits.detach()


Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, dict], tuple[torch.Tensor, dict]]


def iterate(
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
        grad, logits = gradient_and_logits(model, x_now + delta_now, y_now)
        right = logits.argmax(1) == y_now
        if not right.all():  # broken at this iterate: keep it, and attack only the others
            delta[active[~right]] = delta_now[~right]
            active, x_now, y_now, delta_now, grad = (t[right] for t in (active, x_now, y_now, delta_now, grad))
            carried = {name: value[right] for name, value in carried.items()}
        delta_now, carried = step(x_now, delta_now, grad, carried)
    delta[active] = delta_now
    return (x + delta).detach()


def check(eps: float, steps: int = 1, step_size: float | None = None, decay: float = 0.0) -> None:
    if not (0 <= eps < float("inf")):
        raise RobinterpError(f"attack epsilon must be a finite number >= 0, got {eps!r}")
    if not (isinstance(steps, int) and steps >= 0):
        raise RobinterpError(f"attack steps must be an integer >= 0, got {steps!r}")
    if step_size is not None and not (0 < step_size < float("inf")):
        raise RobinterpError(f"attack step_size must be a finite number > 0, got {step_size!r}")
    if not (0 <= decay < float("inf")):
        raise RobinterpError(f"MI-FGSM decay must be a finite number >= 0, got {decay!r}")


def seeded_generators(x: torch.Tensor, seed: int | torch.Tensor | None) -> Generators:
    """None, one generator for the batch (an int seed), or one per image (a tensor of seeds)."""
    if seed is None:
        return None
    if isinstance(seed, torch.Tensor):
        return [torch.Generator(device=x.device).manual_seed(int(s)) for s in seed.tolist()]
    return torch.Generator(device=x.device).manual_seed(seed)


def draw(sample: Callable[..., torch.Tensor], shape: tuple[int, ...], generator: Generators, like: torch.Tensor):
    """``sample`` (torch.rand or torch.randn) of ``shape`` on ``like``'s device and dtype: from one
    generator, or row i from generator i."""
    if isinstance(generator, list):
        rows = [sample(shape[1:], generator=g, device=like.device, dtype=like.dtype) for g in generator]
        return torch.stack(rows) if rows else torch.empty(shape, device=like.device, dtype=like.dtype)
    return sample(shape, generator=generator, device=like.device, dtype=like.dtype)


def image_seeds(seed: int, n: int) -> torch.Tensor:
    """One seed per image of an evaluation set, drawn from ``seed``."""
    return torch.randint(0, 2**62, (n,), generator=torch.Generator().manual_seed(seed))
