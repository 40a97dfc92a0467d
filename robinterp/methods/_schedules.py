"""Schedules that several training methods share (no method of its own)."""

from __future__ import annotations


def ramped(eps: float, progress: float, warmup: float) -> float:
    """eps grown linearly from 0 over the first ``warmup`` fraction of training.

    PGD training on MNIST at eps 0.3 from scratch collapses to chance (seen
    here); a ramp over the first half epoch avoids it.
    """
    return eps if warmup <= 0 else eps * min(1.0, progress / warmup)
