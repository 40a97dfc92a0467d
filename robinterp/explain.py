"""Attributions through captum, one function each with one signature.

``method(model, x, target, **options) -> attribution`` (same shape as ``x``),
computed in eval mode with the model's modes restored, batched over ``x``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from captum.attr import GradientShap, IntegratedGradients, NoiseTunnel, Saliency
from torch import nn

from robinterp import RobinterpError
from robinterp.device import on_model_device
from robinterp.models import eval_mode


@on_model_device
def saliency(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, absolute: bool = True) -> torch.Tensor:
    """Vanilla gradient of the target logit (Simonyan et al. 2014)."""
    with eval_mode(model):
        return Saliency(model).attribute(x, target=target, abs=absolute).detach()


@on_model_device
def integrated_gradients(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    n_steps: int = 50,
    method: str = "gausslegendre",
    internal_batch_size: int = 512,
) -> torch.Tensor:
    """Integrated Gradients from a black (all-zero) baseline (Sundararajan et al. 2017).

    ``method`` is captum's quadrature rule; ``quantus.explain`` uses "riemann_trapezoid"
    with 10 steps.
    """
    with eval_mode(model):
        return (
            IntegratedGradients(model)
            .attribute(
                x,
                target=target,
                baselines=torch.zeros_like(x),
                n_steps=n_steps,
                method=method,
                internal_batch_size=internal_batch_size,
            )
            .detach()
        )


@on_model_device
def gradient_shap(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    n_samples: int = 20,
    stdevs: float = 0.1,
    n_baselines: int = 10,
    seed: int = 0,
) -> torch.Tensor:
    """GradientSHAP with uniform-noise baselines in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    baselines = torch.rand((n_baselines,) + tuple(x.shape[1:]), generator=generator)
    with eval_mode(model):
        return (
            GradientShap(model)
            .attribute(x, baselines=baselines.to(x.device), target=target, n_samples=n_samples, stdevs=stdevs)
            .detach()
        )


@on_model_device
def smoothgrad(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, nt_samples: int = 25, stdevs: float = 0.15
) -> torch.Tensor:
    """SmoothGrad: the saliency averaged over Gaussian-noised copies (Smilkov et al. 2017)."""
    with eval_mode(model):
        return (
            NoiseTunnel(Saliency(model))
            .attribute(
                x,
                target=target,
                nt_type="smoothgrad",
                nt_samples=nt_samples,
                stdevs=stdevs,
                nt_samples_batch_size=nt_samples,
            )
            .detach()
        )


@on_model_device
def random_attribution(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, seed: int | None = None
) -> torch.Tensor:
    """A control: uniform noise in [0, 1] of the input's shape, blind to the model.

    Unseeded it draws from torch's global generator, so a metric that explains
    perturbed inputs sees a fresh map each time, as it would of a useless explainer.
    """
    generator = None if seed is None else torch.Generator(device=x.device).manual_seed(seed)
    return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)


EXPLAINERS: dict[str, Callable[..., torch.Tensor]] = {
    "saliency": saliency,
    "integrated_gradients": integrated_gradients,
    "gradient_shap": gradient_shap,
    "smoothgrad": smoothgrad,
    "random": random_attribution,
}


def get_explainer(name: str) -> Callable[..., torch.Tensor]:
    if name not in EXPLAINERS:
        raise RobinterpError(f"unknown attribution method {name!r}; choose one of {', '.join(EXPLAINERS)}")
    return EXPLAINERS[name]


@on_model_device
def explain(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, method: str = "saliency", batch_size: int = 256, **options
) -> torch.Tensor:
    """Attributions of ``method`` for every image, computed ``batch_size`` images at a time."""
    fn = get_explainer(method)
    return torch.cat(
        [
            fn(
                model,
                x[i : i + batch_size].detach().clone().requires_grad_(True),
                target[i : i + batch_size],
                **options,
            )
            for i in range(0, len(x), batch_size)
        ]
    )
