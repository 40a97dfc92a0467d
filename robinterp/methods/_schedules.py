"""Schedules that several training methods share (no method of its own)."""

from __future__ import annotations

from typing import Any


def ramped(eps: float, progress: float, warmup: float) -> float:
    """eps grown linearly from 0 over the first ``warmup`` fraction of training.

    PGD training on MNIST at eps 0.3 from scratch collapses to chance (seen
    here); a ramp over the first half epoch avoids it.
    """
    return eps if warmup <= 0 else eps * min(1.0, progress / warmup)


def warmup_dependence(spec: Any) -> str:
    """The ``budget_dependence`` of a method with ``eps_warmup``, a fraction of the whole training:
    a longer run ramps more slowly, so it is not the shorter one continued."""
    warmup = spec.params.eps_warmup
    return (
        ""
        if warmup <= 0
        else f"its eps warm-up lasts {warmup:g} of the whole training, so each budget ramps its own way"
    )
