"""Where the work runs: a chapter's ``device`` (``auto``: CUDA when present, else the CPU).

Models are trained and kept on their device; the data stay on the CPU, where the chapters
index, subset and tabulate them. Every function that takes a model and tensors
(``on_model_device``) moves its tensor arguments to the model's device, computes there, and
gives its tensor results back on the device its inputs came from, so a chapter's code is the
same on a CPU and on a GPU, and a batch crosses the bus once per call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from robinterp import RobinterpError
from robinterp.settings.choices import DEVICES

F = TypeVar("F", bound=Callable[..., Any])


def resolve(name: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without one is an error."""
    if name not in DEVICES:
        raise RobinterpError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RobinterpError(
            f"device cuda asked for, but torch {torch.__version__} sees no GPU "
            f"(CUDA build: {torch.version.cuda or 'no'}); use device auto or cpu"
        )
    return name


def of(model: nn.Module) -> torch.device:
    """The device of the model's parameters (or buffers); the CPU for a model without either."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def moved(value: Any, device: torch.device) -> Any:
    """``value`` with every tensor in it (also in tuples, lists and dicts) on ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple | list):
        return type(value)(moved(v, device) for v in value)
    if isinstance(value, dict):
        return {k: moved(v, device) for k, v in value.items()}
    return value


def on_model_device(fn: F) -> F:
    """``fn(model, ...)`` computed on the model's device, its tensor results returned on the device
    of its first tensor argument. A no-op when they already agree (the CPU here)."""

    @functools.wraps(fn)
    def wrapper(model: nn.Module, *args: Any, **kwargs: Any) -> Any:
        device = of(model)
        home = next((a.device for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), device)
        if home == device:
            return fn(model, *args, **kwargs)
        return moved(fn(model, *moved(args, device), **moved(kwargs, device)), home)

    return wrapper  # type: ignore[return-value]
